/// Layers applied in order (Keras' Sequential). Backward stops at the first layer below which
/// nothing is trainable: frozen trunks cost no gradient work at all.
public final class Sequential {
    public private(set) var layers: [Layer]
    public init(_ layers: [Layer]) { self.layers = layers }

    public func append(_ layer: Layer) { layers.append(layer) }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }

    public func layer(named name: String) -> Layer? { layers.first { $0.name == name } }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try layers.reduce(input) { try $1.outputShape($0) }
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        try layers.reduce(x) { try $1.forward($0, training: training) }
    }

    /// Backpropagates dL/d(output) through the layers that need it.
    public func backward(_ dy: Tensor) throws {
        guard let lowest = layers.firstIndex(where: \.trainable) else { return }
        var grad = dy
        for i in stride(from: layers.count - 1, through: lowest, by: -1) {
            guard let dx = try layers[i].backward(grad, inputGradient: i > lowest) else { break }
            grad = dx
        }
    }
}

/// Layers applied in order (Keras' Sequential). Backward stops at the first layer below which
/// nothing is trainable: frozen trunks cost no gradient work at all.
public final class Sequential {
    public private(set) var layers: [Layer]
    /// The layers' input and scratch gradients during backward.
    public let gradients = GradientArena()
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

    /// Backpropagates dL/d(output) through the layers that need it. `gradientsReady` is called
    /// as soon as a layer's trainable parameter gradients are final (in backward order, once per
    /// layer that has any), so data-parallel training can start reducing them while backward
    /// continues (CONTRACTS.md section 2).
    public func backward(_ dy: Tensor, gradientsReady: (([Parameter]) -> Void)? = nil) throws {
        guard let lowest = layers.firstIndex(where: \.trainable) else { return }
        var grad = dy
        for i in stride(from: layers.count - 1, through: lowest, by: -1) {
            // dx goes to the slot that does not hold dy (a view such as Flatten's keeps dy's slot).
            let target = GradientTarget(arena: gradients, input: gradients.slot(holding: grad) == 0 ? 1 : 0)
            let dx = try layers[i].backward(grad, inputGradient: i > lowest, into: target)
            if let gradientsReady {
                let ready = layers[i].parameters.filter(\.trainable)
                if !ready.isEmpty { gradientsReady(ready) }
            }
            guard let dx else { break }
            grad = dx
        }
    }
}

/// A trainable array and its gradient. Names follow Keras: "block1_conv1/kernel".
public final class Parameter {
    public let name: String
    public let value: Tensor
    /// Allocated on first backward; stays on the device.
    public internal(set) var grad: Tensor?
    public var trainable = true

    public init(name: String, value: Tensor) { self.name = name; self.value = value }

    func gradient() throws -> Tensor {
        if let grad { return grad }
        let g = try Tensor(zeros: value.shape, on: value.device, what: "\(name) gradient")
        grad = g
        return g
    }
}

public enum Activation: String, Sendable { case linear, relu }

/// A layer with an explicit forward and backward, as llm.c writes them. Layers keep what their
/// backward needs from the last forward, and reuse their output buffers across steps.
public protocol Layer: AnyObject {
    var name: String { get }
    var parameters: [Parameter] { get }
    /// Every saved array in Keras' order (trainable and not, e.g. BN's moving statistics),
    /// named "layer/kernel", "layer/bias", "layer/moving_mean", ...
    var weights: [NamedTensor] { get }
    /// Output shape (batch first) for an input shape; throws with the layer name if it cannot run.
    func outputShape(_ input: [Int]) throws -> [Int]
    func forward(_ x: Tensor, training: Bool) throws -> Tensor
    /// Fills the gradients of trainable parameters and returns dL/dx when `inputGradient`.
    func backward(_ dy: Tensor, inputGradient: Bool) throws -> Tensor?
}

/// A saved array of a layer: "block1_conv1/kernel".
public struct NamedTensor {
    public let name: String
    public let tensor: Tensor
    public init(name: String, tensor: Tensor) { self.name = name; self.tensor = tensor }
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var weights: [NamedTensor] { parameters.map { NamedTensor(name: $0.name, tensor: $0.value) } }
    public var trainable: Bool {
        get { parameters.contains { $0.trainable } }
        set { parameters.forEach { $0.trainable = newValue } }
    }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}

/// Returns `slot` when it already has `shape` on `device`, else a new tensor stored in `slot`:
/// steady-state steps allocate nothing.
func reuse(_ slot: inout Tensor?, _ shape: [Int], on device: Device, what: String) throws -> Tensor {
    if let t = slot, t.shape == shape, t.device === device { return t }
    slot = nil
    let t = try Tensor(uninitialized: shape, on: device, what: what)
    slot = t
    return t
}

/// The window geometry of a conv or pooling layer for an NHWC input shape; errors name the layer.
func windowGeometry(layer: String, input s: [Int], kernel: (Int, Int), stride: (Int, Int), padding: Padding,
                    outC: Int? = nil) throws -> WindowGeometry {
    try requireRank(s, 4, layer: layer)
    do {
        return try WindowGeometry(batch: s[0], inH: s[1], inW: s[2], inC: s[3], kernel: kernel, stride: stride,
                                  padding: padding, outC: outC)
    } catch let e as VGGTLError { throw VGGTLError.invalidArgument("layer \(layer): \(e)") }
}

func requireRank(_ shape: [Int], _ rank: Int, layer: String) throws {
    guard shape.count == rank else {
        throw VGGTLError.invalidArgument("layer \(layer) expects a rank-\(rank) input, got shape \(shape)")
    }
}

/// Glorot (Xavier) uniform, Keras' default kernel initialiser.
func glorotUniform(_ shape: [Int], fanIn: Int, fanOut: Int, rng: inout SeededGenerator) -> [Float] {
    let limit = (6 / Float(fanIn + fanOut)).squareRoot()
    return (0..<shape.reduce(1, *)).map { _ in rng.uniform(-limit, limit) }
}

extension Parameter {
    /// Copies `g` into this parameter's gradient (for tests and tools that compute gradients elsewhere).
    public func setGradientForTesting(_ g: Tensor) throws {
        let mine = try gradient()
        guard g.shape == value.shape else { throw VGGTLError.shapeMismatch(what: "\(name) gradient", expected: value.shape, got: g.shape) }
        g.device.copy(g.buffer, srcOffset: 0, to: mine.buffer, dstOffset: 0, count: g.count)
    }
}

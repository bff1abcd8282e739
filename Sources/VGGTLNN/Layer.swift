import VGGTLTensors

/// A trainable array and its gradient. Names follow Keras: "block1_conv1/kernel".
public final class Parameter {
    public let name: String
    public let value: Tensor
    /// Allocated on first backward; stays on the device.
    public internal(set) var grad: Tensor?
    public var trainable = true

    public init(name: String, value: Tensor) { self.name = name; self.value = value }

    package func gradient() throws -> Tensor {
        if let grad { return grad }
        let g = try Tensor(zeros: value.shape, on: value.device, what: "\(name) gradient")
        grad = g
        return g
    }
}

/// The activation a Conv2D or Dense applies to its output (Keras' `activation=`), and the ones a
/// layer can fuse as an epilogue (ReLU). ReLU's backward masks with the output; the others'
/// (the newer backbones': EfficientNet's squeeze-and-excitation convolutions take swish and
/// sigmoid) need the pre-activation, which the layer then keeps.
public enum Activation: String, Sendable {
    case linear, relu, relu6, sigmoid, swish, gelu

    /// The device function of the activations other than linear and ReLU.
    public var pointwise: PointwiseFunction? {
        switch self {
        case .linear, .relu: return nil
        case .relu6: return .relu6
        case .sigmoid: return .sigmoid
        case .swish: return .swish
        case .gelu: return .gelu
        }
    }
}

/// A layer of a network (`Graph`) with an explicit forward and backward, as llm.c writes them.
/// Layers keep what their backward needs from the last forward; the network owns the memory:
/// it passes each forward the tensor to write (planned by liveness, see `MemoryPlan`) and each
/// backward where to write its input gradients.
public protocol Layer: AnyObject {
    var name: String { get }
    var parameters: [Parameter] { get }
    /// Every saved array in Keras' order (trainable and not, e.g. BN's moving statistics),
    /// named "layer/kernel", "layer/bias", "layer/moving_mean", ...
    var weights: [NamedTensor] { get }
    /// How many inputs the layer takes (Add and Concatenate: two or more).
    var inputArity: ClosedRange<Int> { get }
    /// Output shape (batch first) for the input shapes; throws with the layer name if it cannot run.
    func outputShape(inputs: [[Int]]) throws -> [Int]
    /// Computes the output into `out` (a tensor of the output shape, nil only when `memory` says
    /// the output is a view of the input) and returns it.
    func forward(inputs: [Tensor], into out: Tensor?, context: StepContext) throws -> Tensor
    /// Fills the gradients of trainable parameters and writes the gradient of every input `i`
    /// with `g.inputs[i] != nil` into that tensor (overwriting it). `context`: the last forward's.
    func backward(_ dy: Tensor, _ g: GradientTargets, context: StepContext) throws
    /// What the memory planner needs to know in the layer's current mode (trainable flags) for a
    /// step in `context` (whether it trains, whether batch statistics are shared).
    func memory(inputs: [[Int]], context: StepContext) -> LayerMemory
    /// Floats of scratch the backward needs for output shape `dy`, given which inputs need a
    /// gradient and whether dy may be overwritten.
    func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool, context: StepContext) -> Int
}

/// The facts about a layer that decide its memory: which buffers it may share or overwrite,
/// which values its backward reads (those stay alive until it has run), and which work it can
/// take over from its neighbours. The memory planner knows layers only through these.
public struct LayerMemory: Hashable, Sendable {
    /// The output is input 0 itself with the output's shape (Flatten; Dropout at inference).
    public var outputIsInputView = false
    /// Inputs whose storage the output may overwrite when nothing else reads them (elementwise
    /// layers: ReLU, BatchNormalization at inference, Add, Dropout).
    public var inPlaceInputs: [Int] = []
    /// Backward reads the inputs' values / the output's value of the last forward.
    public var backwardReadsInputs = true
    public var backwardReadsOutput = false
    /// How the input gradients come about.
    public var inputGradients = InputGradients.computed(inPlace: false)
    /// Backward reads the output only before it writes the input gradient, which may then take
    /// the output's storage when nothing else reads it (Conv2D and Dense with a fused ReLU: the
    /// mask is applied first).
    public var inputGradientOverOutput = false
    /// The forward may write its output into a channel slice of a wider NHWC tensor (`out` with
    /// a row stride larger than its channels: the network places a Concatenate's inputs in its
    /// output, so that concatenating costs no copy), and the backward takes such a slice as dy.
    public var writesChannelSlices = false
    /// Activations the layer can apply to its output as it writes it (BatchNormalization, Add):
    /// the network fuses a following standalone one into it (`StepContext.epilogue`), saving a pass.
    public var epilogues: Set<Activation> = []
    /// The layer is this activation alone, applied in place (ReLU): when its input's layer
    /// applies it as an epilogue, this one only takes that output (`StepContext.appliedByInput`).
    public var standaloneActivation: Activation?

    public init() {}
}

public enum InputGradients: Hashable, Sendable {
    /// The layer writes them into tensors it is given; `inPlace`: input 0's may be dy's own
    /// storage when dy is dead (elementwise backward: ReLU, BatchNormalization, Dropout).
    case computed(inPlace: Bool)
    /// Every input's gradient is dy itself, viewed with the input's shape (Flatten, Add,
    /// Dropout at inference): no work and no buffer.
    case dy
    /// Input i is channels `ranges[i]` of the output, and its gradient those channels of dy
    /// (Concatenate): the network may place input i in its channels of the output (a layer that
    /// `writesChannelSlices` then writes it there, and the forward finds it in place), and passes
    /// the gradient on as a view, no copy.
    case channels([Range<Int>])
}

/// Where a layer's backward writes.
public struct GradientTargets {
    /// One per input: where its gradient goes (overwritten), nil when it needs none or the
    /// network routes it (`InputGradients.dy`, `.channels`).
    public var inputs: [Tensor?]
    /// Nothing reads dy after this layer: it may be overwritten (the ReLU mask applied in place).
    public var dyIsDead: Bool
    /// At least `backwardScratch` floats, when the layer asked for any.
    public var scratch: DeviceBuffer?

    public init(inputs: [Tensor?], dyIsDead: Bool = false, scratch: DeviceBuffer? = nil) {
        self.inputs = inputs; self.dyIsDead = dyIsDead; self.scratch = scratch
    }
}

/// A layer with one input: what most layers are.
public protocol UnaryLayer: Layer {
    func outputShape(_ input: [Int]) throws -> [Int]
    func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor
}

extension UnaryLayer {
    public var inputArity: ClosedRange<Int> { 1...1 }
    public func outputShape(inputs: [[Int]]) throws -> [Int] {
        guard inputs.count == 1 else { throw VGGTLError.invalidArgument("layer \(name) takes 1 input, got \(inputs.count)") }
        return try outputShape(inputs[0])
    }
    public func forward(inputs: [Tensor], into out: Tensor?, context: StepContext) throws -> Tensor {
        guard inputs.count == 1 else { throw VGGTLError.invalidArgument("layer \(name) takes 1 input, got \(inputs.count)") }
        return try forward(inputs[0], into: out, context: context)
    }
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
    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { LayerMemory() }
    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool, context: StepContext) -> Int { 0 }
    public var trainable: Bool {
        get { parameters.contains { $0.trainable } }
        set { parameters.forEach { $0.trainable = newValue } }
    }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// The output tensor the network passed, or an error naming the layer (a planner fault).
    func required(_ out: Tensor?) throws -> Tensor {
        guard let out else { throw VGGTLError.invalidArgument("layer \(name): forward without an output tensor") }
        return out
    }

    func backwardBeforeForward() -> VGGTLError { .invalidArgument("layer \(name): backward before forward") }
}

/// Returns `slot` when it already has `shape` on `device`, else a new tensor stored in `slot`:
/// steady-state steps allocate nothing (the loss, the trainer's input batch).
package func reuse(_ slot: inout Tensor?, _ shape: [Int], on device: Device, what: String) throws -> Tensor {
    if let t = slot, t.shape == shape, t.device === device { return t }
    slot = nil
    let t = try Tensor(uninitialized: shape, on: device, what: what)
    slot = t
    return t
}

/// dy with the ReLU mask of output `y` applied: in place when dy is dead, else into the scratch
/// the layer asked for (`activationScratch`).
func reluMasked(_ dy: Tensor, output y: Tensor, _ g: GradientTargets) -> Tensor {
    let masked = g.dyIsDead ? dy : Tensor(view: g.scratch!, shape: dy.shape, on: dy.device)
    dy.device.reluBackward(y.buffer, dy.buffer, masked.buffer, count: dy.count)
    return masked
}

extension LayerMemory {
    /// Conv2D and Dense: backward reads the input for the kernel's gradient, the output for a
    /// fused ReLU's mask, and writes dx after both.
    static func kernelLayer(kernel: Parameter, activation: Activation) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = kernel.trainable
        m.backwardReadsOutput = activation == .relu
        m.inputGradientOverOutput = true
        return m
    }
}

extension LayerMemory {
    /// A layer whose output is its input, reshaped (Flatten, Reshape): no work, no buffer, dy
    /// passed back as it is.
    static var inputView: LayerMemory {
        var m = LayerMemory()
        m.outputIsInputView = true
        m.backwardReadsInputs = false
        m.inputGradients = .dy
        return m
    }

    /// An elementwise map whose backward needs neither input nor output (a fixed affine map:
    /// Rescaling, Normalization): in place both ways.
    static var fixedElementwise: LayerMemory {
        var m = LayerMemory()
        m.inPlaceInputs = [0]
        m.backwardReadsInputs = false
        m.inputGradients = .computed(inPlace: true)
        return m
    }

    /// Dropout and stochastic depth: in place while they drop (training, rate > 0), else a view
    /// of the input whose gradient is dy.
    static func dropping(_ active: Bool) -> LayerMemory {
        guard active else { return inputView }
        var m = LayerMemory()
        m.backwardReadsInputs = false
        m.inPlaceInputs = [0]
        m.inputGradients = .computed(inPlace: true)
        return m
    }
}

/// The mask seed of a dropping layer's `step`-th training forward (Dropout, StochasticDepth).
func maskSeed(_ seed: UInt32, step: UInt32) -> UInt32 {
    var s = SeededGenerator(seed: UInt64(seed) << 32 | UInt64(step))
    return UInt32(truncatingIfNeeded: s.next())
}

/// Checks that the last axis of `shape` has a per-channel layer's `channels`.
func requireChannels(_ shape: [Int], _ channels: Int, layer: String) throws {
    guard shape.last == channels else {
        throw VGGTLError.shapeMismatch(what: "layer \(layer) channels", expected: [channels], got: [shape.last ?? 0])
    }
}

/// Scratch for `activationGradient`: none when dy may be overwritten or there is no activation.
func activationScratch(_ activation: Activation, dy: [Int], dyIsDead: Bool) -> Int {
    activation != .linear && !dyIsDead ? dy.reduce(1, *) : 0
}

/// Where a kernel layer writes before its activation: the output itself, or for a pointwise
/// activation (not ReLU) a tensor of the layer's own (`slot`) that its backward reads.
func preActivation(_ activation: Activation, output y: Tensor, _ slot: inout Tensor?, layer: String) throws -> Tensor {
    guard activation.pointwise != nil else { return y }
    return try reuse(&slot, y.shape, on: y.device, what: "\(layer) pre-activation")
}

/// y = f(z) for a pointwise activation (linear and ReLU: nothing to do, z is y).
func applyActivation(_ activation: Activation, _ z: Tensor, _ y: Tensor) {
    if let f = activation.pointwise { y.device.pointwise(f, z.buffer, y.buffer, count: y.count) }
}

/// dy through the layer's activation: ReLU's mask from the output y, a pointwise function's
/// derivative at the pre-activation z; in place when dy is dead, else into the layer's scratch.
func activationGradient(_ activation: Activation, _ dy: Tensor, output y: Tensor, preActivation z: Tensor?,
                        _ g: GradientTargets) -> Tensor {
    if activation == .relu { return reluMasked(dy, output: y, g) }
    guard let f = activation.pointwise, let z else { return dy }
    let out = g.dyIsDead ? dy : Tensor(view: g.scratch!, shape: dy.shape, on: dy.device)
    dy.device.pointwiseBackward(f, z.buffer, dy.buffer, out.buffer, count: dy.count)
    return out
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
    let n = shape.reduce(1, *)
    // A plain loop into the array: ResNet50's 25M weights in a fraction of a second even in a
    // debug build (the tests build whole backbones).
    return [Float](unsafeUninitializedCapacity: n) { buffer, count in
        rng.fillUniform(buffer.baseAddress!, count: n, lo: -limit, hi: limit)
        count = n
    }
}

extension Parameter {
    /// Copies `g` into this parameter's gradient (for tests and tools that compute gradients elsewhere).
    public func setGradientForTesting(_ g: Tensor) throws {
        let mine = try gradient()
        guard g.shape == value.shape else { throw VGGTLError.shapeMismatch(what: "\(name) gradient", expected: value.shape, got: g.shape) }
        g.device.copy(g.buffer, srcOffset: 0, to: mine.buffer, dstOffset: 0, count: g.count)
    }
}

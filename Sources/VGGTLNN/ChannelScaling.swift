import VGGTLTensors

/// Keras' Multiply as squeeze-and-excitation uses it (EfficientNet's `blockN_se_excite`): an
/// NHWC tensor x [n, h, w, c] times per-image channel factors s [n, 1, 1, c] (or [n, c]),
/// broadcast over the pixels. Either input may be the factors.
public final class Multiply: Layer {
    public let name: String
    private var x: Tensor?, s: Tensor?, factorsFirst = false
    public init(_ name: String) { self.name = name }
    public var inputArity: ClosedRange<Int> { 2...2 }

    /// Which input holds the factors (the one with one value per image and channel).
    private func roles(_ inputs: [[Int]]) throws -> (x: Int, s: Int) {
        guard inputs.count == 2 else { throw VGGTLError.invalidArgument("layer \(name) multiplies 2 inputs, got \(inputs.count)") }
        func isFactors(_ f: [Int], of x: [Int]) -> Bool {
            x.count >= 2 && f.first == x.first && f.last == x.last && f.dropFirst().dropLast().allSatisfy { $0 == 1 }
                && (f.count == x.count || f.count == 2)
        }
        if isFactors(inputs[1], of: inputs[0]) { return (0, 1) }
        if isFactors(inputs[0], of: inputs[1]) { return (1, 0) }
        throw VGGTLError.shapeMismatch(what: "layer \(name) inputs (a tensor and per-image channel factors [n, 1, 1, c])",
                                       expected: inputs[0], got: inputs[1])
    }

    public func outputShape(inputs: [[Int]]) throws -> [Int] {
        let r = try roles(inputs)
        return inputs[r.x]
    }

    public func forward(inputs: [Tensor], into out: Tensor?, context: StepContext) throws -> Tensor {
        let r = try roles(inputs.map(\.shape))
        let x = inputs[r.x], s = inputs[r.s], y = try required(out)
        let (batch, channels) = (x.shape[0], x.shape.last!)
        x.device.channelScale(x.buffer, s.buffer, y.buffer, batch: batch, pixels: x.count / (batch * channels), channels: channels)
        self.x = x; self.s = s; factorsFirst = r.x == 1
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x, let s else { throw backwardBeforeForward() }
        let (batch, channels) = (x.shape[0], x.shape.last!), pixels = x.count / (batch * channels), d = dy.device
        let (dx, ds) = factorsFirst ? (t.inputs[1], t.inputs[0]) : (t.inputs[0], t.inputs[1])
        if let ds { d.channelScaleGradient(x.buffer, dy.buffer, ds.buffer, batch: batch, pixels: pixels, channels: channels) }
        if let dx { d.channelScale(dy.buffer, s.buffer, dx.buffer, batch: batch, pixels: pixels, channels: channels) }
    }
}

/// ConvNeXt's layer scale: y = x * gamma per channel, gamma trainable (Keras' LayerScale,
/// initial value 1e-6; torchvision's CNBlock.layer_scale, [C, 1, 1] there).
public final class LayerScale: UnaryLayer {
    public let name: String
    public let gamma: Parameter
    private var x: Tensor?

    public init(_ name: String, channels: Int, initialValue: Float = 1e-6, on device: Device) throws {
        self.name = name
        gamma = Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: initialValue, count: channels), shape: [channels],
                                                                    on: device, what: "\(name)/gamma"))
    }

    public var parameters: [Parameter] { [gamma] }
    var channels: Int { gamma.value.count }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireChannels(input, channels, layer: name)
        return input
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = gamma.trainable
        if !gamma.trainable { m.inPlaceInputs = [0] }
        m.inputGradients = .computed(inPlace: true)
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let y = try required(out)
        x.device.channelScale(x.buffer, gamma.value.buffer, y.buffer, batch: 1, pixels: x.count / channels, channels: channels)
        self.x = x
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        let d = dy.device, rows = dy.count / channels
        if gamma.trainable {
            guard let x else { throw backwardBeforeForward() }
            d.channelScaleGradient(x.buffer, dy.buffer, try gamma.gradient().buffer, batch: 1, pixels: rows, channels: channels)
        }
        if let dx = t.inputs[0] { d.channelScale(dy.buffer, gamma.value.buffer, dx.buffer, batch: 1, pixels: rows, channels: channels) }
    }
}

/// Stochastic depth on a residual branch (ConvNeXt's drop path, EfficientNet's per-block drop
/// connect): while training, each sample's branch is dropped with probability `rate` and kept
/// ones are scaled by 1 / (1 - rate), as Keras, timm and torchvision do ("row" mode); identity
/// at inference. The per-sample keep decisions are Dropout's seeded hash over the sample's place
/// in the global batch, drawn on the device: the same on every backend and every rank split.
public final class StochasticDepth: UnaryLayer {
    public let name: String
    public let rate: Float
    public let seed: UInt32
    /// Forward calls in training mode so far; part of the mask seed.
    public var step: UInt32 = 0
    private var active = false
    /// Per-sample factors of the last training forward: 0 or 1 / (1 - rate).
    private var factors: Tensor?, ones: Tensor?

    public init(_ name: String, rate: Float, seed: UInt32) throws {
        guard rate >= 0, rate < 1 else { throw VGGTLError.invalidArgument("layer \(name): stochastic depth rate must be in [0, 1), got \(rate)") }
        self.name = name; self.rate = rate; self.seed = seed
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .dropping(context.isTraining && rate > 0) }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        active = context.isTraining && rate > 0
        guard active else { return x }
        step &+= 1
        let stepSeed = maskSeed(seed, step: step)
        let batch = x.shape[0], d = x.device
        let ones = try reuse(&self.ones, [batch], on: d, what: "\(name) ones")
        d.fill(ones.buffer, value: 1, offset: 0, count: batch)
        let factors = try reuse(&self.factors, [batch], on: d, what: "\(name) sample factors")
        d.dropout(ones.buffer, factors.buffer, count: batch, rate: rate, seed: stepSeed,
                  indexOffset: UInt32(truncatingIfNeeded: context.sampleOffset))
        let y = try required(out)
        d.channelScale(x.buffer, factors.buffer, y.buffer, batch: batch, pixels: x.count / max(batch, 1), channels: 1)
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        guard active, let factors else { throw VGGTLError.invalidArgument("layer \(name): its gradient is dy itself at inference; the network routes it") }
        let batch = dy.shape[0]
        dy.device.channelScale(dy.buffer, factors.buffer, dx.buffer, batch: batch, pixels: dy.count / max(batch, 1), channels: 1)
    }

    /// The per-sample factors of the last training forward (0 or 1 / (1 - rate)), for tests.
    public var lastFactors: [Float]? { active ? factors?.toArray() : nil }
}

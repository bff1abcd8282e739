import VGGTLTensors

/// Keras' Rescaling: y = x * scale + offset, with one scale and offset for every channel or one
/// per channel (Keras' EfficientNet divides by the square root of the ImageNet standard
/// deviations per channel after its Normalization). Nothing trains. The device's per-channel
/// affine map (batchNormApply with mean 0, variance 1, epsilon 0: an exact x * scale + offset) computes it.
public final class Rescaling: UnaryLayer {
    public let name: String
    public let scale: [Float], offset: [Float]
    /// Per-channel constants on the device: scale, offset, zeros, ones.
    private var constants: [Tensor]?

    public init(_ name: String, scale: [Float], offset: [Float] = [0]) throws {
        guard !scale.isEmpty, !offset.isEmpty else { throw VGGTLError.invalidArgument("layer \(name): rescaling needs a scale and an offset") }
        self.name = name; self.scale = scale; self.offset = offset
    }

    public convenience init(_ name: String, scale: Float, offset: Float = 0) throws {
        try self.init(name, scale: [scale], offset: [offset])
    }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        let c = input.last ?? 0
        for (what, v) in [("scale", scale), ("offset", offset)] where v.count != 1 && v.count != c {
            throw VGGTLError.shapeMismatch(what: "layer \(name) \(what) (one value or one per channel)", expected: [c], got: [v.count])
        }
        return input
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .fixedElementwise }

    private func deviceConstants(channels c: Int, on d: Device) throws -> [Tensor] {
        if let k = constants, k[0].count == c, k[0].device === d { return k }
        func expand(_ v: [Float]) -> [Float] { v.count == 1 ? [Float](repeating: v[0], count: c) : v }
        let k = try [expand(scale), expand(offset), [Float](repeating: 0, count: c), [Float](repeating: 1, count: c)]
            .map { try Tensor($0, shape: [c], on: d, what: "\(name) constants") }
        constants = k
        return k
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let y = try required(out), c = x.shape.last!
        let k = try deviceConstants(channels: c, on: x.device)
        x.device.batchNormApply(x.buffer, y.buffer, rows: x.count / c, channels: c, mean: k[2].buffer, variance: k[3].buffer,
                                gamma: k[0].buffer, beta: k[1].buffer, epsilon: 0)
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        let c = dy.shape.last!, k = try deviceConstants(channels: c, on: dy.device)
        dy.device.batchNormApply(dy.buffer, dx.buffer, rows: dy.count / c, channels: c, mean: k[2].buffer, variance: k[3].buffer,
                                 gamma: k[0].buffer, beta: k[2].buffer, epsilon: 0)
    }
}

/// Keras' Normalization over the channel axis with fixed statistics (EfficientNet and ConvNeXt
/// put it first, with ImageNet's mean and variance): y = (x - mean) / max(sqrt(variance), 1e-7),
/// Keras' own epsilon. Its weights are `mean` and `variance` (Keras also stores `count`, which
/// only its adapt() uses); nothing trains.
public final class Normalization: UnaryLayer {
    public static let epsilon: Float = 1e-7
    public let name: String
    public let mean: Tensor, variance: Tensor
    /// max(variance, eps^2), made from `variance` whenever that changes (a weights file loaded),
    /// and zeros and ones: the operands of the device's per-channel affine map.
    private let safeVariance: Tensor, zeros: Tensor, ones: Tensor
    private var safeFrom: UInt64?

    public init(_ name: String, mean: [Float], variance: [Float], on device: Device) throws {
        guard !mean.isEmpty, mean.count == variance.count else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) variance", expected: [mean.count], got: [variance.count])
        }
        self.name = name
        let c = mean.count
        self.mean = try Tensor(mean, shape: [c], on: device, what: "\(name)/mean")
        self.variance = try Tensor(variance, shape: [c], on: device, what: "\(name)/variance")
        safeVariance = try Tensor(zeros: [c], on: device, what: "\(name) variance")
        zeros = try Tensor(zeros: [c], on: device)
        ones = try Tensor([Float](repeating: 1, count: c), shape: [c], on: device)
    }

    public var weights: [NamedTensor] { [NamedTensor(name: "\(name)/mean", tensor: mean), NamedTensor(name: "\(name)/variance", tensor: variance)] }
    var channels: Int { mean.count }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireChannels(input, channels, layer: name)
        return input
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .fixedElementwise }

    /// The clamped variance: read back (c floats) only when the variance has changed.
    private func clampedVariance() -> Tensor {
        if safeFrom != variance.version {
            let floor = Self.epsilon * Self.epsilon
            safeVariance.upload(variance.toArray().map { max($0, floor) })
            safeFrom = variance.version
        }
        return safeVariance
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let y = try required(out)
        x.device.batchNormApply(x.buffer, y.buffer, rows: x.count / channels, channels: channels, mean: mean.buffer,
                                variance: clampedVariance().buffer, gamma: ones.buffer, beta: zeros.buffer, epsilon: 0)
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        dy.device.batchNormApply(dy.buffer, dx.buffer, rows: dy.count / channels, channels: channels, mean: zeros.buffer,
                                 variance: clampedVariance().buffer, gamma: ones.buffer, beta: zeros.buffer, epsilon: 0)
    }
}

/// A standalone ReLU (Keras' Activation('relu')); Conv2D and Dense also fuse it.
public final class ReLU: Layer {
    public let name: String
    private var y: Tensor?, dx: Tensor?
    public init(_ name: String) { self.name = name }
    public func outputShape(_ input: [Int]) throws -> [Int] { input }
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        let y = try reuse(&self.y, x.shape, on: x.device, what: "\(name) output")
        x.device.relu(x.buffer, y.buffer, count: x.count)
        return y
    }
    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard inputGradient, let y else { return nil }
        let dx = try gradientTensor(&self.dx, dy.shape, on: dy.device, what: "\(name) input gradient", target: target)
        dy.device.reluBackward(y.buffer, dy.buffer, dx.buffer, count: dy.count)
        return dx
    }
}

/// Inverted dropout: scales kept units by 1/(1-rate) while training, identity at inference.
/// Masks come from a counter-based hash of (seed, step, index), identical on every backend.
public final class Dropout: Layer {
    public let name: String
    public let rate: Float
    public let seed: UInt32
    /// Forward calls in training mode so far; part of the mask seed, saved with checkpoints.
    public var step: UInt32 = 0
    /// Where this batch's first sample sits in the global batch of a data-parallel step: the
    /// mask is that of the same sample in one process's batch (set by Distributed/; 0 otherwise).
    public var sampleOffset = 0
    private var y: Tensor?, dx: Tensor?, lastSeed: UInt32 = 0, lastOffset: UInt32 = 0, active = false

    public init(_ name: String, rate: Float, seed: UInt32) throws {
        guard rate >= 0, rate < 1 else { throw VGGTLError.invalidArgument("layer \(name): dropout rate must be in [0, 1), got \(rate)") }
        self.name = name; self.rate = rate; self.seed = seed
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        active = training && rate > 0
        guard active else { return x }
        step &+= 1
        var s = SeededGenerator(seed: UInt64(seed) << 32 | UInt64(step))
        lastSeed = UInt32(truncatingIfNeeded: s.next())
        let y = try reuse(&self.y, x.shape, on: x.device, what: "\(name) output")
        lastOffset = UInt32(truncatingIfNeeded: sampleOffset * (x.count / max(x.shape[0], 1)))
        x.device.dropout(x.buffer, y.buffer, count: x.count, rate: rate, seed: lastSeed, indexOffset: lastOffset)
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard inputGradient else { return nil }
        guard active else { return dy }
        let dx = try gradientTensor(&self.dx, dy.shape, on: dy.device, what: "\(name) input gradient", target: target)
        dy.device.dropout(dy.buffer, dx.buffer, count: dy.count, rate: rate, seed: lastSeed, indexOffset: lastOffset)
        return dx
    }
}

import VGGTLTensors

/// A standalone ReLU (Keras' Activation('relu')); Conv2D and Dense also fuse it. The network may
/// run it in place over its input, have it write into its channels of a Concatenate's output, or
/// have the layer before apply it (an epilogue of BatchNormalization or Add).
public final class ReLU: UnaryLayer {
    public let name: String
    private var y: Tensor?
    public init(_ name: String) { self.name = name }
    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.inPlaceInputs = [0]
        m.backwardReadsInputs = false
        m.backwardReadsOutput = true
        m.inputGradients = .computed(inPlace: true)
        m.writesChannelSlices = true
        m.standaloneActivation = .relu
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        if context.appliedByInput {
            // The layer before applied this ReLU as it wrote x: x is the result.
            self.y = x
            return x
        }
        let y = try required(out)
        if x.isContiguous && y.isContiguous {
            x.device.relu(x.buffer, y.buffer, count: x.count)
        } else {
            x.device.reluRows(x.buffer, x.layout, y.buffer, y.layout, rows: x.rows, cols: x.rowLength)
        }
        self.y = y
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        guard let y else { throw backwardBeforeForward() }
        if y.isContiguous && dy.isContiguous && dx.isContiguous {
            dy.device.reluBackward(y.buffer, dy.buffer, dx.buffer, count: dy.count)
        } else {
            dy.device.reluBackwardRows(y.buffer, y.layout, dy.buffer, dy.layout, dx.buffer, dx.layout, rows: dy.rows, cols: dy.rowLength)
        }
    }
}

/// Inverted dropout: scales kept units by 1/(1-rate) while training, identity at inference.
/// Masks come from a counter-based hash of (seed, step, index), identical on every backend.
public final class Dropout: UnaryLayer {
    public let name: String
    public let rate: Float
    public let seed: UInt32
    /// Forward calls in training mode so far; part of the mask seed, saved with checkpoints.
    public var step: UInt32 = 0
    private var lastSeed: UInt32 = 0, lastOffset: UInt32 = 0, active = false

    public init(_ name: String, rate: Float, seed: UInt32) throws {
        guard rate >= 0, rate < 1 else { throw VGGTLError.invalidArgument("layer \(name): dropout rate must be in [0, 1), got \(rate)") }
        self.name = name; self.rate = rate; self.seed = seed
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .dropping(context.isTraining && rate > 0) }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        active = context.isTraining && rate > 0
        guard active else { return x }
        step &+= 1
        lastSeed = maskSeed(seed, step: step)
        let y = try required(out)
        // Each sample's mask is that of its place in the global batch (`StepContext.sampleOffset`).
        lastOffset = UInt32(truncatingIfNeeded: context.sampleOffset * (x.count / max(x.shape[0], 1)))
        x.device.dropout(x.buffer, y.buffer, count: x.count, rate: rate, seed: lastSeed, indexOffset: lastOffset)
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        guard active else { throw VGGTLError.invalidArgument("layer \(name): its gradient is dy itself at inference; the network routes it") }
        dy.device.dropout(dy.buffer, dx.buffer, count: dy.count, rate: rate, seed: lastSeed, indexOffset: lastOffset)
    }
}

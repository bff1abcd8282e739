/// Batch statistics shared by the ranks of data-parallel training (`--sync-bn`; Distributed/
/// implements it). Without one, each process normalises with its own batch's statistics.
public protocol BatchStatisticsSync: AnyObject {
    /// In: per-channel mean and biased variance of this process's `rows` rows. Out, in place:
    /// those of the rows of all processes. Returns the rows of all processes.
    func reduceStatistics(mean: Tensor, variance: Tensor, rows: Int, layer: String) throws -> Int
    /// This process's sums dgamma = sum(dy * xhat), dbeta = sum(dy) in; the sums over all
    /// processes out (the tensors, the parameters' own gradients, are left as they are: the
    /// gradient reduction sums them later).
    func reduceGradientSums(dgamma: Tensor, dbeta: Tensor, layer: String) throws -> (dgamma: [Float], dbeta: [Float])
}

/// Keras' BatchNormalization over the last (channel) axis. Uses batch statistics only when
/// training *and* trainable: a frozen BN layer stays in inference mode, so fine-tuning with
/// frozen blocks does not drift their statistics (the Keras fine-tuning trap).
public final class BatchNormalization: Layer {
    public let name: String
    public let gamma: Parameter, beta: Parameter
    public let movingMean: Tensor, movingVariance: Tensor
    public let momentum: Float, epsilon: Float
    private var x: Tensor?, y: Tensor?, dx: Tensor?, scratch: Tensor?, mean: Tensor?, variance: Tensor?
    private let zeros: Tensor
    private var usedBatchStatistics = false
    /// Always normalise with the moving statistics, even when training and trainable (gamma and
    /// beta still learn): what Keras advises when fine-tuning a pretrained network.
    public var frozenStatistics = false
    /// Set: batch statistics (and their backward) over the batches of all processes.
    public var statisticsSync: BatchStatisticsSync?
    /// Rows the last forward's statistics covered (all processes' with a sync), and the
    /// per-channel coefficients of the synchronised backward.
    private var statisticsRows = 0, syncedBackward: (shift: Tensor, scale: Tensor, negativeMean: Tensor)?

    public init(_ name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3, on device: Device) throws {
        self.name = name; self.momentum = momentum; self.epsilon = epsilon
        gamma = Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device))
        beta = Parameter(name: "\(name)/beta", value: try Tensor(zeros: [channels], on: device))
        movingMean = try Tensor(zeros: [channels], on: device, what: "\(name)/moving_mean")
        movingVariance = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device, what: "\(name)/moving_variance")
        zeros = try Tensor(zeros: [channels], on: device)
        mean = try Tensor(zeros: [channels], on: device); variance = try Tensor(zeros: [channels], on: device)
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var weights: [NamedTensor] {
        [NamedTensor(name: gamma.name, tensor: gamma.value), NamedTensor(name: beta.name, tensor: beta.value),
         NamedTensor(name: "\(name)/moving_mean", tensor: movingMean), NamedTensor(name: "\(name)/moving_variance", tensor: movingVariance)]
    }
    var channels: Int { gamma.value.count }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.last == channels else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) channels", expected: [channels], got: [input.last ?? 0])
        }
        return input
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        _ = try outputShape(x.shape)
        let d = x.device, rows = x.count / channels
        let y = try reuse(&self.y, x.shape, on: d, what: "\(name) output")
        usedBatchStatistics = training && trainable && !frozenStatistics
        if usedBatchStatistics {
            d.channelMeanVariance(x.buffer, rows: rows, channels: channels, mean: mean!.buffer, variance: variance!.buffer)
            statisticsRows = try statisticsSync?.reduceStatistics(mean: mean!, variance: variance!, rows: rows, layer: name) ?? rows
            d.batchNormUpdateRunning(runningMean: movingMean.buffer, runningVariance: movingVariance.buffer, mean: mean!.buffer,
                                     variance: variance!.buffer, channels: channels, rows: statisticsRows, momentum: momentum)
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: mean!.buffer, variance: variance!.buffer,
                             gamma: gamma.value.buffer, beta: beta.value.buffer, epsilon: epsilon)
        } else {
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: movingMean.buffer, variance: movingVariance.buffer,
                             gamma: gamma.value.buffer, beta: beta.value.buffer, epsilon: epsilon)
        }
        self.x = x
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard let x else { throw VGGTLError.invalidArgument("layer \(name): backward before forward") }
        let d = dy.device, rows = x.count / channels
        let dx = try gradientTensor(&self.dx, x.shape, on: d, what: "\(name) input gradient", target: target)
        if usedBatchStatistics {
            d.batchNormBackward(x.buffer, dy.buffer, dx.buffer, rows: rows, channels: channels, mean: mean!.buffer,
                                variance: variance!.buffer, gamma: gamma.value.buffer, epsilon: epsilon,
                                dgamma: try gamma.gradient().buffer, dbeta: try beta.gradient().buffer)
            if let sync = statisticsSync {
                let sums = try sync.reduceGradientSums(dgamma: try gamma.gradient(), dbeta: try beta.gradient(), layer: name)
                if inputGradient { try synchronisedInputGradient(dy, dx: dx, sums: sums, target: target) }
            }
            return inputGradient ? dx : nil
        }
        // Inference mode: an affine map per channel with the moving statistics.
        if trainable {
            // gamma/beta gradients use the same sums as training mode, with the moving statistics.
            let scratch = try gradientTensor(&self.scratch, x.shape, on: d, what: "\(name) scratch", target: target, scratch: true)
            d.batchNormBackward(x.buffer, dy.buffer, scratch.buffer, rows: rows, channels: channels, mean: movingMean.buffer,
                                variance: movingVariance.buffer, gamma: gamma.value.buffer, epsilon: epsilon,
                                dgamma: try gamma.gradient().buffer, dbeta: try beta.gradient().buffer)
        }
        guard inputGradient else { return nil }
        // dx = dy * gamma / sqrt(var + eps): the apply kernel with zero mean and zero shift.
        d.batchNormApply(dy.buffer, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: movingVariance.buffer,
                         gamma: gamma.value.buffer, beta: zeros.buffer, epsilon: epsilon)
        return dx
    }

    /// dx = gamma/s (dy - dbeta/N - xhat dgamma/N) with the sums and N of all processes
    /// (s = sqrt(var + eps)), as scale (x - mean)/s + shift + gamma dy/s with
    /// scale = -gamma dgamma/(N s) and shift = -gamma dbeta/(N s). x - mean is formed first
    /// (addBias of -mean): the apply kernel's x*k - mean*k would cancel catastrophically in
    /// channels whose mean is large against their spread.
    private func synchronisedInputGradient(_ dy: Tensor, dx: Tensor, sums: (dgamma: [Float], dbeta: [Float]), target: GradientTarget?) throws {
        guard let x else { return }
        let d = dy.device, rows = x.count / channels, n = Float(max(statisticsRows, 1))
        let g = gamma.value.toArray(), v = variance!.toArray(), m = mean!.toArray(), dg = sums.dgamma, db = sums.dbeta
        var shift = [Float](repeating: 0, count: channels), scale = shift
        for c in 0..<channels {
            let s = (v[c] + epsilon).squareRoot()
            shift[c] = -g[c] * db[c] / (n * s)
            scale[c] = -g[c] * dg[c] / (n * s)
        }
        if syncedBackward == nil {
            syncedBackward = (try Tensor(zeros: [channels], on: d, what: "\(name) shift"), try Tensor(zeros: [channels], on: d, what: "\(name) scale"),
                              try Tensor(zeros: [channels], on: d, what: "\(name) -mean"))
        }
        let (shiftT, scaleT, negMeanT) = syncedBackward!
        shift.withUnsafeBufferPointer { d.write($0, to: shiftT.buffer, offset: 0) }
        scale.withUnsafeBufferPointer { d.write($0, to: scaleT.buffer, offset: 0) }
        m.map { -$0 }.withUnsafeBufferPointer { d.write($0, to: negMeanT.buffer, offset: 0) }
        let centred = try gradientTensor(&self.scratch, x.shape, on: d, what: "\(name) scratch", target: target, scratch: true)
        d.copy(x.buffer, srcOffset: 0, to: centred.buffer, dstOffset: 0, count: x.count)
        d.addBias(centred.buffer, bias: negMeanT.buffer, rows: rows, channels: channels)
        d.batchNormApply(centred.buffer, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: variance!.buffer,
                         gamma: scaleT.buffer, beta: shiftT.buffer, epsilon: epsilon)
        d.batchNormApply(dy.buffer, centred.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: variance!.buffer,
                         gamma: gamma.value.buffer, beta: zeros.buffer, epsilon: epsilon)
        d.axpy(alpha: 1, centred.buffer, dx.buffer, count: dx.count)
    }
}

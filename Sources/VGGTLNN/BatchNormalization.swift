import VGGTLTensors

/// Batch statistics shared by the ranks of data-parallel training (`--sync-bn`; Distributed/
/// implements it, a step's `StepContext` carries it). Without one, each process normalises with
/// its own batch's statistics.
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
/// frozen blocks does not drift their statistics (the Keras fine-tuning trap). `scale: false`
/// has no gamma (Keras' scale=False, as InceptionV3 has it): the weights are beta, moving_mean,
/// moving_variance. epsilon: Keras 1e-3 (ResNet50 1.001e-5), torchvision 1e-5.
public final class BatchNormalization: UnaryLayer {
    public let name: String
    /// nil with scale=False.
    public let gamma: Parameter?
    public let beta: Parameter
    public let movingMean: Tensor, movingVariance: Tensor
    public let momentum: Float, epsilon: Float
    private var x: Tensor?
    private let mean: Tensor, variance: Tensor
    /// Zeros (the shift of the input-gradient map), and ones standing in for gamma with scale=False.
    private let zeros: Tensor, ones: Tensor
    /// Where the kernels put a gamma gradient nobody wants (scale=False).
    private var unusedGammaGradient: Tensor?
    private var usedBatchStatistics = false
    /// Always normalise with the moving statistics, even when training and trainable (gamma and
    /// beta still learn): what Keras advises when fine-tuning a pretrained network. Chosen when
    /// the model is built.
    public var frozenStatistics = false
    /// Rows the last forward's statistics covered (all processes' with a sync), and the
    /// per-channel coefficients of the synchronised backward.
    private var statisticsRows = 0, syncedBackward: (shift: Tensor, scale: Tensor, negativeMean: Tensor)?

    public init(_ name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3, scale: Bool = true, on device: Device) throws {
        self.name = name; self.momentum = momentum; self.epsilon = epsilon
        ones = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device)
        gamma = scale ? Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device,
                                                                             what: "\(name)/gamma")) : nil
        beta = Parameter(name: "\(name)/beta", value: try Tensor(zeros: [channels], on: device, what: "\(name)/beta"))
        movingMean = try Tensor(zeros: [channels], on: device, what: "\(name)/moving_mean")
        movingVariance = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device, what: "\(name)/moving_variance")
        zeros = try Tensor(zeros: [channels], on: device)
        mean = try Tensor(zeros: [channels], on: device); variance = try Tensor(zeros: [channels], on: device)
    }

    public var scale: Bool { gamma != nil }
    public var parameters: [Parameter] { (gamma.map { [$0] } ?? []) + [beta] }
    public var weights: [NamedTensor] {
        parameters.map { NamedTensor(name: $0.name, tensor: $0.value) }
            + [NamedTensor(name: "\(name)/moving_mean", tensor: movingMean), NamedTensor(name: "\(name)/moving_variance", tensor: movingVariance)]
    }
    var channels: Int { beta.value.count }
    private var gammaValue: Tensor { gamma?.value ?? ones }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.last == channels else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) channels", expected: [channels], got: [input.last ?? 0])
        }
        return input
    }

    func usesBatchStatistics(_ context: StepContext) -> Bool { context.isTraining && recalibrates }

    /// Training normalises this layer with batch statistics, so a recalibration pass
    /// (`StepContext.recalibrationBatch`) recomputes its moving statistics; a frozen layer, or
    /// one that keeps its moving statistics (`frozenStatistics`), is left as it is.
    public var recalibrates: Bool { trainable && !frozenStatistics }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        // Inference mode needs x only for gamma's gradient; then the output may overwrite x.
        m.backwardReadsInputs = usesBatchStatistics(context) || gamma?.trainable == true
        if !m.backwardReadsInputs { m.inPlaceInputs = [0] }
        // In inference mode with gamma training, the statistics kernel writes a throw-away input
        // gradient before the real one is computed from dy, and the synchronised backward reads
        // dy after the statistics kernel wrote dx: dx must not be dy's storage then.
        let batch = usesBatchStatistics(context)
        m.inputGradients = .computed(inPlace: batch ? context.statisticsSync == nil : gamma?.trainable != true)
        m.epilogues = [.relu]
        return m
    }

    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool, context: StepContext) -> Int {
        // The statistics' kernels also write an input gradient; without a target it goes to dy
        // (when dead) or to scratch. The synchronised backward centres x in scratch.
        // Planned before the forward runs (only for training steps): decide from the flags.
        let batch = usesBatchStatistics(context)
        if batch && context.statisticsSync != nil && inputGradients[0] { return dy.reduce(1, *) }
        let writesUnwanted = batch || gamma?.trainable == true
        return writesUnwanted && !inputGradients[0] && !dyIsDead ? dy.reduce(1, *) : 0
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let d = x.device, rows = x.count / channels
        let y = try required(out)
        let relu = context.epilogue == .relu
        usedBatchStatistics = usesBatchStatistics(context)
        if let k = context.recalibrationBatch, recalibrates {
            // Precise BatchNorm: the moving statistics become the equal-weighted mean over the
            // pass's batches of the batch means and of the batch variances, each variance made
            // unbiased (n / (n - 1)) as the moving variance of training is. A cumulative mean:
            // momentum (k - 1) / k keeps (k - 1) / k of the mean of the k - 1 batches before.
            d.channelMeanVariance(x.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer)
            d.batchNormUpdateRunning(runningMean: movingMean.buffer, runningVariance: movingVariance.buffer, mean: mean.buffer,
                                     variance: variance.buffer, channels: channels, rows: rows, momentum: Float(k - 1) / Float(k))
            // The layers after it see what training shows them: this batch normalised by its own statistics.
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer,
                             gamma: gammaValue.buffer, beta: beta.value.buffer, epsilon: epsilon, relu: relu)
        } else if usedBatchStatistics {
            d.channelMeanVariance(x.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer)
            statisticsRows = try context.statisticsSync?.reduceStatistics(mean: mean, variance: variance, rows: rows, layer: name) ?? rows
            d.batchNormUpdateRunning(runningMean: movingMean.buffer, runningVariance: movingVariance.buffer, mean: mean.buffer,
                                     variance: variance.buffer, channels: channels, rows: statisticsRows, momentum: momentum)
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer,
                             gamma: gammaValue.buffer, beta: beta.value.buffer, epsilon: epsilon, relu: relu)
        } else {
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: movingMean.buffer, variance: movingVariance.buffer,
                             gamma: gammaValue.buffer, beta: beta.value.buffer, epsilon: epsilon, relu: relu)
        }
        self.x = x
        return y
    }

    /// dgamma's buffer: gamma's gradient, or a scratch one for scale=False.
    private func gammaGradient() throws -> Tensor {
        if let gamma { return try gamma.gradient() }
        if unusedGammaGradient == nil { unusedGammaGradient = try Tensor(zeros: [channels], on: beta.value.device) }
        return unusedGammaGradient!
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x else { throw backwardBeforeForward() }
        let d = dy.device, rows = x.count / channels
        let dx = t.inputs[0]
        // Where an input gradient that is not wanted may go.
        func sink() -> DeviceBuffer { dx?.buffer ?? (t.dyIsDead ? dy.buffer : t.scratch!) }
        if usedBatchStatistics {
            d.batchNormBackward(x.buffer, dy.buffer, sink(), rows: rows, channels: channels, mean: mean.buffer,
                                variance: variance.buffer, gamma: gammaValue.buffer, epsilon: epsilon,
                                dgamma: try gammaGradient().buffer, dbeta: try beta.gradient().buffer)
            if let sync = context.statisticsSync {
                let sums = try sync.reduceGradientSums(dgamma: try gammaGradient(), dbeta: try beta.gradient(), layer: name)
                if let dx { try synchronisedInputGradient(dy, dx: dx, sums: sums, scratch: t.scratch!) }
            }
            return
        }
        // Inference mode: an affine map per channel with the moving statistics.
        if gamma?.trainable == true {
            // gamma/beta gradients use the same sums as training mode, with the moving statistics;
            // the input gradient it also writes is overwritten below (dx is never dy here).
            d.batchNormBackward(x.buffer, dy.buffer, sink(), rows: rows, channels: channels, mean: movingMean.buffer,
                                variance: movingVariance.buffer, gamma: gammaValue.buffer, epsilon: epsilon,
                                dgamma: try gammaGradient().buffer, dbeta: try beta.gradient().buffer)
        } else if beta.trainable {
            d.biasGradient(dy.buffer, rows: rows, channels: channels, db: try beta.gradient().buffer, accumulate: false)
        }
        guard let dx else { return }
        // dx = dy * gamma / sqrt(var + eps): the apply kernel with zero mean and zero shift.
        d.batchNormApply(dy.buffer, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: movingVariance.buffer,
                         gamma: gammaValue.buffer, beta: zeros.buffer, epsilon: epsilon)
    }

    /// dx = gamma/s (dy - dbeta/N - xhat dgamma/N) with the sums and N of all processes
    /// (s = sqrt(var + eps)), as scale (x - mean)/s + shift + gamma dy/s with
    /// scale = -gamma dgamma/(N s) and shift = -gamma dbeta/(N s). x - mean is formed first
    /// (addBias of -mean): the apply kernel's x*k - mean*k would cancel catastrophically in
    /// channels whose mean is large against their spread.
    private func synchronisedInputGradient(_ dy: Tensor, dx: Tensor, sums: (dgamma: [Float], dbeta: [Float]), scratch: DeviceBuffer) throws {
        guard let x else { return }
        let d = dy.device, rows = x.count / channels, n = Float(max(statisticsRows, 1))
        let g = gammaValue.toArray(), v = variance.toArray(), m = mean.toArray(), dg = sums.dgamma, db = sums.dbeta
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
        let centred = scratch
        d.copy(x.buffer, srcOffset: 0, to: centred, dstOffset: 0, count: x.count)
        d.addBias(centred, bias: negMeanT.buffer, rows: rows, channels: channels)
        d.batchNormApply(centred, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: variance.buffer,
                         gamma: scaleT.buffer, beta: shiftT.buffer, epsilon: epsilon)
        d.batchNormApply(dy.buffer, centred, rows: rows, channels: channels, mean: zeros.buffer, variance: variance.buffer,
                         gamma: gammaValue.buffer, beta: zeros.buffer, epsilon: epsilon)
        d.axpy(alpha: 1, centred, dx.buffer, count: dx.count)
    }
}

/// A device that hands every call on to another one (`base`): the place to watch or change what
/// a model asks of its device without touching a backend (tracing, counting, and in tests a
/// device that fails or miscomputes: Tests/FaultHarness). Buffers are `base`'s; convolution
/// plans are `base`'s, seen through this device.
///
/// Every call but `allocate`, `convolutionPlan` and `checkHealthy` goes through `perform`, so a
/// subclass that overrides it sees (and may skip) all the work; or it overrides single methods.
open class ForwardingDevice: Device {
    public let base: Device

    public init(_ base: Device) { self.base = base }

    /// Runs one call on `base`; `call` names it ("gemm", "convolution forward", ...). The default
    /// just runs it.
    open func perform(_ call: String, _ work: () throws -> Void) rethrows { try work() }

    open var kind: DeviceKind { base.kind }
    open var processor: Processor { base.processor }
    open var name: String { base.name }

    open func allocate(_ count: Int, what: String) throws -> DeviceBuffer { try base.allocate(count, what: what) }
    open func write(_ values: UnsafeBufferPointer<Float>, to: DeviceBuffer, offset: Int) {
        perform("write") { base.write(values, to: to, offset: offset) }
    }
    open func read(_ buffer: DeviceBuffer, offset: Int, into: UnsafeMutableBufferPointer<Float>) {
        perform("read") { base.read(buffer, offset: offset, into: into) }
    }
    open func copy(_ src: DeviceBuffer, srcOffset: Int, to dst: DeviceBuffer, dstOffset: Int, count: Int) {
        perform("copy") { base.copy(src, srcOffset: srcOffset, to: dst, dstOffset: dstOffset, count: count) }
    }
    open func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        perform("fill") { base.fill(buffer, value: value, offset: offset, count: count) }
    }
    open func synchronize() { perform("synchronize") { base.synchronize() } }

    open func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                   a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                   beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int) {
        perform("gemm") {
            base.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, aOffset: aOffset, lda: lda,
                      b: b, bOffset: bOffset, ldb: ldb, beta: beta, c: c, cOffset: cOffset, ldc: ldc)
        }
    }

    open func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan {
        ForwardingConvolutionPlan(device: self, base: try base.convolutionPlan(g))
    }
    open func checkHealthy() throws { try base.checkHealthy() }

    open func im2col(_ x: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, col: DeviceBuffer) {
        perform("im2col") { base.im2col(x, g, row0: row0, rows: rows, col: col) }
    }
    open func col2imAdd(_ dcol: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, dx: DeviceBuffer) {
        perform("col2imAdd") { base.col2imAdd(dcol, g, row0: row0, rows: rows, dx: dx) }
    }
    open func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, rows: Int, channels: Int) {
        perform("addBias") { base.addBias(y, bias: bias, rows: rows, channels: channels) }
    }
    open func biasGradient(_ dy: DeviceBuffer, rows: Int, channels: Int, db: DeviceBuffer, accumulate: Bool) {
        perform("biasGradient") { base.biasGradient(dy, rows: rows, channels: channels, db: db, accumulate: accumulate) }
    }
    open func relu(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) { perform("relu") { base.relu(x, y, count: count) } }
    open func reluBackward(_ y: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int) {
        perform("reluBackward") { base.reluBackward(y, dy, dx, count: count) }
    }
    open func scale(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, by: Float) {
        perform("scale") { base.scale(x, y, count: count, by: by) }
    }
    open func axpy(alpha: Float, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) {
        perform("axpy") { base.axpy(alpha: alpha, x, y, count: count) }
    }
    open func add(_ a: DeviceBuffer, _ b: DeviceBuffer, _ y: DeviceBuffer, count: Int, relu: Bool) {
        perform("add") { base.add(a, b, y, count: count, relu: relu) }
    }
    open func copyBlock(_ src: DeviceBuffer, _ s: BlockLayout, to dst: DeviceBuffer, _ d: BlockLayout, outer: Int, rows: Int, cols: Int) {
        perform("copyBlock") { base.copyBlock(src, s, to: dst, d, outer: outer, rows: rows, cols: cols) }
    }
    open func reluRows(_ x: DeviceBuffer, _ xl: RowLayout, _ y: DeviceBuffer, _ yl: RowLayout, rows: Int, cols: Int) {
        perform("reluRows") { base.reluRows(x, xl, y, yl, rows: rows, cols: cols) }
    }
    open func reluBackwardRows(_ y: DeviceBuffer, _ yl: RowLayout, _ dy: DeviceBuffer, _ dyl: RowLayout,
                               _ dx: DeviceBuffer, _ dxl: RowLayout, rows: Int, cols: Int) {
        perform("reluBackwardRows") { base.reluBackwardRows(y, yl, dy, dyl, dx, dxl, rows: rows, cols: cols) }
    }

    open func maxPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry) { perform("maxPool") { base.maxPool(x, y, g) } }
    open func maxPoolBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry) {
        perform("maxPoolBackward") { base.maxPoolBackward(x, dy, dx, g) }
    }
    open func avgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        perform("avgPool") { base.avgPool(x, y, g, countPadding: countPadding) }
    }
    open func avgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        perform("avgPoolBackward") { base.avgPoolBackward(dy, dx, g, countPadding: countPadding) }
    }
    open func globalAvgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        perform("globalAvgPool") { base.globalAvgPool(x, y, batch: batch, pixels: pixels, channels: channels) }
    }
    open func globalAvgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        perform("globalAvgPoolBackward") { base.globalAvgPoolBackward(dy, dx, batch: batch, pixels: pixels, channels: channels) }
    }

    open func channelMeanVariance(_ x: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer) {
        perform("channelMeanVariance") { base.channelMeanVariance(x, rows: rows, channels: channels, mean: mean, variance: variance) }
    }
    open func batchNormApply(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer,
                             gamma: DeviceBuffer, beta: DeviceBuffer, epsilon: Float, relu: Bool) {
        perform("batchNormApply") {
            base.batchNormApply(x, y, rows: rows, channels: channels, mean: mean, variance: variance, gamma: gamma, beta: beta,
                                epsilon: epsilon, relu: relu)
        }
    }
    open func batchNormUpdateRunning(runningMean: DeviceBuffer, runningVariance: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                                     channels: Int, rows: Int, momentum: Float) {
        perform("batchNormUpdateRunning") {
            base.batchNormUpdateRunning(runningMean: runningMean, runningVariance: runningVariance, mean: mean, variance: variance,
                                        channels: channels, rows: rows, momentum: momentum)
        }
    }
    open func batchNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer,
                                variance: DeviceBuffer, gamma: DeviceBuffer, epsilon: Float, dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        perform("batchNormBackward") {
            base.batchNormBackward(x, dy, dx, rows: rows, channels: channels, mean: mean, variance: variance, gamma: gamma,
                                   epsilon: epsilon, dgamma: dgamma, dbeta: dbeta)
        }
    }

    open func dropout(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, rate: Float, seed: UInt32, indexOffset: UInt32) {
        perform("dropout") { base.dropout(x, y, count: count, rate: rate, seed: seed, indexOffset: indexOffset) }
    }
    open func softmaxCrossEntropy(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, classes: Int, loss: DeviceBuffer,
                                  dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        perform("softmaxCrossEntropy") {
            base.softmaxCrossEntropy(logits, labels: labels, rows: rows, classes: classes, loss: loss, dlogits: dlogits,
                                     gradScale: gradScale, classWeights: classWeights)
        }
    }
    open func sigmoidBinaryCrossEntropy(_ logits: DeviceBuffer, targets: DeviceBuffer, count: Int, loss: DeviceBuffer,
                                        dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        perform("sigmoidBinaryCrossEntropy") {
            base.sigmoidBinaryCrossEntropy(logits, targets: targets, count: count, loss: loss, dlogits: dlogits,
                                           gradScale: gradScale, classWeights: classWeights)
        }
    }
    open func softmax(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, classes: Int) {
        perform("softmax") { base.softmax(x, y, rows: rows, classes: classes) }
    }

    open func depthwiseConv(_ x: DeviceBuffer, _ w: DeviceBuffer, bias: DeviceBuffer?, _ y: DeviceBuffer, _ g: WindowGeometry) {
        perform("depthwiseConv") { base.depthwiseConv(x, w, bias: bias, y, g) }
    }
    open func depthwiseConvBackwardData(_ dy: DeviceBuffer, _ w: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry) {
        perform("depthwiseConvBackwardData") { base.depthwiseConvBackwardData(dy, w, dx, g) }
    }
    open func depthwiseConvBackwardFilter(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dw: DeviceBuffer, _ g: WindowGeometry) {
        perform("depthwiseConvBackwardFilter") { base.depthwiseConvBackwardFilter(x, dy, dw, g) }
    }
    open func pointwise(_ f: PointwiseFunction, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) {
        perform("pointwise") { base.pointwise(f, x, y, count: count) }
    }
    open func pointwiseBackward(_ f: PointwiseFunction, _ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int) {
        perform("pointwiseBackward") { base.pointwiseBackward(f, x, dy, dx, count: count) }
    }
    open func layerNorm(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int, gamma: DeviceBuffer, beta: DeviceBuffer,
                        epsilon: Float, mean: DeviceBuffer, invStd: DeviceBuffer) {
        perform("layerNorm") {
            base.layerNorm(x, y, rows: rows, channels: channels, gamma: gamma, beta: beta, epsilon: epsilon, mean: mean, invStd: invStd)
        }
    }
    open func layerNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int,
                                mean: DeviceBuffer, invStd: DeviceBuffer, gamma: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        perform("layerNormBackward") {
            base.layerNormBackward(x, dy, dx, rows: rows, channels: channels, mean: mean, invStd: invStd, gamma: gamma,
                                   dgamma: dgamma, dbeta: dbeta)
        }
    }
    open func channelScale(_ x: DeviceBuffer, _ s: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        perform("channelScale") { base.channelScale(x, s, y, batch: batch, pixels: pixels, channels: channels) }
    }
    open func channelScaleGradient(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ ds: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        perform("channelScaleGradient") { base.channelScaleGradient(x, dy, ds, batch: batch, pixels: pixels, channels: channels) }
    }

    open func sgdUpdate(param: DeviceBuffer, grad: DeviceBuffer, velocity: DeviceBuffer?, count: Int, _ c: SGDConfig) {
        perform("sgdUpdate") { base.sgdUpdate(param: param, grad: grad, velocity: velocity, count: count, c) }
    }
    open func adamUpdate(param: DeviceBuffer, grad: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, count: Int, step: Int, _ c: AdamConfig) {
        perform("adamUpdate") { base.adamUpdate(param: param, grad: grad, m: m, v: v, count: count, step: step, c) }
    }
    open func rmspropUpdate(param: DeviceBuffer, grad: DeviceBuffer, meanSquare: DeviceBuffer, count: Int, _ c: RMSpropConfig) {
        perform("rmspropUpdate") { base.rmspropUpdate(param: param, grad: grad, meanSquare: meanSquare, count: count, c) }
    }
}

/// A plan of the device underneath a `ForwardingDevice`: its passes take the forwarding
/// device's tensors, seen as the base device's (the same buffers), and run through `perform`.
final class ForwardingConvolutionPlan: ConvolutionPlan {
    let device: ForwardingDevice
    let base: ConvolutionPlan
    /// The kernel tensor last seen and its view on the base device, kept so that the base plan
    /// sees the same tensor on every call and can keep a frozen layer's transformed kernel.
    private var kernel: (tensor: Tensor, view: Tensor)?

    init(device: ForwardingDevice, base: ConvolutionPlan) { self.device = device; self.base = base }

    var geometry: WindowGeometry { base.geometry }
    var forwardAlgorithm: String { base.forwardAlgorithm }
    var backwardDataAlgorithm: String { base.backwardDataAlgorithm }
    var backwardFilterAlgorithm: String { base.backwardFilterAlgorithm }
    var forwardWorkspace: Int { base.forwardWorkspace }
    var backwardDataWorkspace: Int { base.backwardDataWorkspace }
    var backwardFilterWorkspace: Int { base.backwardFilterWorkspace }

    private func onBase(_ t: Tensor) -> Tensor { t.viewed(on: device.base) }

    private func onBase(kernel w: Tensor) -> Tensor {
        if let kernel, kernel.tensor === w { return kernel.view }
        let view = onBase(w)
        kernel = (w, view)
        return view
    }

    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try device.perform("convolution forward") {
            try base.forward(x: onBase(x), w: onBase(kernel: w), bias: bias.map { onBase($0) }, relu: relu, y: onBase(y),
                             kernelIsConstant: kernelIsConstant)
        }
    }

    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try device.perform("convolution backward-data") {
            try base.backwardData(dy: onBase(dy), w: onBase(kernel: w), dx: onBase(dx), kernelIsConstant: kernelIsConstant)
        }
    }

    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try device.perform("convolution backward-filter") {
            try base.backwardFilter(x: onBase(x), dy: onBase(dy), dw: onBase(dw), db: db.map { onBase($0) })
        }
    }

    func releaseKeptKernels() { base.releaseKeptKernels() }
}

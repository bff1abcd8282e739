/// Memory owned by one device. Tensors hold one; nothing copies between devices implicitly.
public protocol DeviceBuffer: AnyObject {
    var count: Int { get }
}

public enum DeviceKind: String, Sendable { case cpu, opencl }

/// The hardware a device's work runs on. An OpenCL device may be the host's own CPU (PoCL,
/// CL_DEVICE_TYPE_CPU), where the CPU backend is far faster on the same cores.
public enum Processor: String, Sendable { case cpu, gpu, accelerator, other }

/// Optimizer hyper-parameters that the update kernels take.
public struct SGDConfig: Sendable {
    public var lr: Float, momentum: Float, nesterov: Bool, weightDecay: Float
    public init(lr: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.lr = lr; self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }
}

public struct AdamConfig: Sendable {
    public var lr: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public init(lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }
}

public struct RMSpropConfig: Sendable {
    public var lr: Float, rho: Float, epsilon: Float, weightDecay: Float
    public init(lr: Float, rho: Float = 0.9, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.lr = lr; self.rho = rho; self.epsilon = epsilon; self.weightDecay = weightDecay
    }
}

/// One compute device. Each primitive is implemented once per backend; everything above
/// (Ops, NN, Optim, Train) is written once against this protocol.
///
/// Conventions: float32 throughout; matrices row-major; activations NHWC; conv kernels HWIO.
/// Offsets and counts are in elements. Calls are ordered and may run asynchronously on devices
/// with a queue; `write` and `read` block (their host pointers live only for the call). A
/// "rows x cols" argument means a row-major matrix view. A device is used from one thread at a
/// time. Inputs are validated above this layer (class labels in range, rows > 0).
public protocol Device: AnyObject {
    var kind: DeviceKind { get }
    /// The hardware it runs on (an OpenCL device: its CL_DEVICE_TYPE).
    var processor: Processor { get }
    /// Human-readable name, e.g. "cpu (OpenBLAS SkylakeX, 2 threads)".
    var name: String { get }

    func allocate(_ count: Int, what: String) throws -> DeviceBuffer
    func write(_ values: UnsafeBufferPointer<Float>, to: DeviceBuffer, offset: Int)
    func read(_ buffer: DeviceBuffer, offset: Int, into: UnsafeMutableBufferPointer<Float>)
    /// Overlapping ranges of one buffer behave as memmove.
    func copy(_ src: DeviceBuffer, srcOffset: Int, to dst: DeviceBuffer, dstOffset: Int, count: Int)
    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int)
    /// Waits until all queued work is done.
    func synchronize()

    /// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k, op(B) k x n (k = 0: C = beta * C).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: DeviceBuffer, aOffset: Int, lda: Int,
              b: DeviceBuffer, bOffset: Int, ldb: Int,
              beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int)

    /// A convolution for one geometry, its algorithms chosen by this device (see ConvolutionPlan).
    /// Plans are cheap to keep: layers hold one per input geometry and call only the plan.
    func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan
    /// Throws the first failure since the device opened (a lost or reset GPU): results since
    /// then are not to be trusted or saved. The CPU never fails this way.
    func checkHealthy() throws

    /// Writes rows [row0, row0+rows) of the im2col matrix of x (outPixels x patchSize) to col.
    func im2col(_ x: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, col: DeviceBuffer)
    /// dx += the scatter of dcol rows [row0, row0+rows) back to input positions (im2col's adjoint).
    func col2imAdd(_ dcol: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, dx: DeviceBuffer)

    /// y[r, c] += bias[c] for a rows x channels matrix.
    func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, rows: Int, channels: Int)
    /// db[c] = (accumulate ? db[c] : 0) + sum_r dy[r, c].
    func biasGradient(_ dy: DeviceBuffer, rows: Int, channels: Int, db: DeviceBuffer, accumulate: Bool)

    func relu(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int)
    /// dx = dy where y > 0 else 0 (y is the ReLU output; works in place on dy).
    func reluBackward(_ y: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int)
    /// y = x * scale (in place allowed).
    func scale(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, by: Float)
    /// y += alpha * x.
    func axpy(alpha: Float, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int)
    /// y = a + b (y may be a or b): Add layers; then max(y, 0) with `relu` (a ReLU fused into it).
    func add(_ a: DeviceBuffer, _ b: DeviceBuffer, _ y: DeviceBuffer, count: Int, relu: Bool)
    /// Copies an outer x rows x cols block between two views; element (o, r, c) of each lies at
    /// offset + o * outerStride + r * rowStride + c. Concatenate (channel slices), ZeroPadding2D.
    func copyBlock(_ src: DeviceBuffer, _ s: BlockLayout, to dst: DeviceBuffer, _ d: BlockLayout, outer: Int, rows: Int, cols: Int)
    /// y = max(x, 0) over rows x cols matrix views (a ReLU writing into a Concatenate's channels).
    func reluRows(_ x: DeviceBuffer, _ xl: RowLayout, _ y: DeviceBuffer, _ yl: RowLayout, rows: Int, cols: Int)
    /// dx = dy where y > 0 else 0 over matrix views; dx may be dy.
    func reluBackwardRows(_ y: DeviceBuffer, _ yl: RowLayout, _ dy: DeviceBuffer, _ dyl: RowLayout,
                          _ dx: DeviceBuffer, _ dxl: RowLayout, rows: Int, cols: Int)

    /// Max pooling; ties go to the first maximum in window order (row-major), padding ignored.
    func maxPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry)
    /// dx = gradient of max pooling (dx is overwritten).
    func maxPoolBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry)
    /// Average pooling: the window's sum over its in-bounds positions divided by their number
    /// (padding excluded, as TensorFlow/Keras) or, with `countPadding`, by the whole window
    /// (PyTorch's count_include_pad=True; positions past the padding are still not counted).
    func avgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool)
    func avgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool)
    /// (n, pixels, c) -> (n, c) mean over pixels, and its gradient.
    func globalAvgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int)
    func globalAvgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, batch: Int, pixels: Int, channels: Int)

    /// Per-channel mean and biased variance of a rows x channels matrix.
    func channelMeanVariance(_ x: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer)
    /// y = gamma * (x - mean) / sqrt(variance + eps) + beta per channel; then max(y, 0) with `relu`
    /// (a following ReLU fused into it: one pass instead of two).
    func batchNormApply(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int,
                        mean: DeviceBuffer, variance: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, epsilon: Float, relu: Bool)
    /// running = momentum * running + (1 - momentum) * batch, with the variance made unbiased.
    func batchNormUpdateRunning(runningMean: DeviceBuffer, runningVariance: DeviceBuffer,
                                mean: DeviceBuffer, variance: DeviceBuffer, channels: Int, rows: Int, momentum: Float)
    /// Training-mode backward: dx, and dgamma/dbeta (overwritten), given the batch statistics.
    func batchNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int,
                           mean: DeviceBuffer, variance: DeviceBuffer, gamma: DeviceBuffer, epsilon: Float,
                           dgamma: DeviceBuffer, dbeta: DeviceBuffer)

    /// y = x * keep / (1 - rate), keep = dropoutKeep(seed, indexOffset + i, rate); also the
    /// backward with x = dy. `indexOffset`: where this batch starts in a data-parallel step's
    /// global batch (elements), so ranks draw the masks one process would (0 otherwise).
    func dropout(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, rate: Float, seed: UInt32, indexOffset: UInt32)

    /// Softmax cross-entropy over rows of logits, labels given as class indices (as floats).
    /// Writes per-row loss and dlogits = (softmax - onehot) * gradScale. With `classWeights`
    /// (one float per class, Keras' class_weight) both are multiplied by the weight of the row's label.
    func softmaxCrossEntropy(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, classes: Int,
                             loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?)
    /// Sigmoid binary cross-entropy on logits (numerically stable form), targets in [0, 1]. With
    /// `classWeights` ([w0, w1]) loss and gradient are multiplied by t * w1 + (1 - t) * w0.
    func sigmoidBinaryCrossEntropy(_ logits: DeviceBuffer, targets: DeviceBuffer, count: Int,
                                   loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?)
    /// Row-wise softmax (for predictions).
    func softmax(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, classes: Int)

    /// Depthwise convolution, channel multiplier 1 (Keras' DepthwiseConv2D, torch's groups = C):
    /// y[n, oh, ow, c] = sum over (kh, kw) of x[n, oh * strideH - padTop + kh, ow * strideW - padLeft + kw, c]
    /// * w[kh, kw, c] (+ bias[c]); positions outside the input are padding. w is [kH, kW, C], the
    /// memory of Keras' [kH, kW, C, 1] kernel as stored (torch's [C, 1, kH, kW] is transposed once
    /// at load). `g.outC == g.inC`.
    func depthwiseConv(_ x: DeviceBuffer, _ w: DeviceBuffer, bias: DeviceBuffer?, _ y: DeviceBuffer, _ g: WindowGeometry)
    /// dx = the input gradient of a depthwise convolution (overwritten).
    func depthwiseConvBackwardData(_ dy: DeviceBuffer, _ w: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry)
    /// dw = its kernel gradient [kH, kW, C] (overwritten).
    func depthwiseConvBackwardFilter(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dw: DeviceBuffer, _ g: WindowGeometry)

    /// y = f(x) elementwise (in place allowed).
    func pointwise(_ f: PointwiseFunction, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int)
    /// dx = dy * f'(x), from the input x; dx may be dy.
    func pointwiseBackward(_ f: PointwiseFunction, _ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int)

    /// Layer normalisation of each row of a rows x channels matrix (NHWC: over the channels of a
    /// pixel): y = (x - mean_r) * invStd_r * gamma[c] + beta[c], invStd_r = 1 / sqrt(var_r + eps)
    /// with the biased variance; writes mean_r and invStd_r (rows floats each) for the backward.
    func layerNorm(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int, gamma: DeviceBuffer, beta: DeviceBuffer,
                   epsilon: Float, mean: DeviceBuffer, invStd: DeviceBuffer)
    /// dx (dx may not be dy), and dgamma[c] = sum_r dy * xhat, dbeta[c] = sum_r dy (overwritten).
    func layerNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int,
                           mean: DeviceBuffer, invStd: DeviceBuffer, gamma: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer)

    /// y[n, p, c] = x[n, p, c] * s[n, c] for x of batch x pixels x channels (y may be x):
    /// squeeze-and-excitation's broadcast multiply (and its input gradient, with x = dy), layer
    /// scale (batch 1), a per-sample factor (channels 1: stochastic depth).
    func channelScale(_ x: DeviceBuffer, _ s: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int)
    /// ds[n, c] = sum over p of dy[n, p, c] * x[n, p, c] (overwritten): channelScale's gradient in s.
    func channelScaleGradient(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ ds: DeviceBuffer, batch: Int, pixels: Int, channels: Int)

    func sgdUpdate(param: DeviceBuffer, grad: DeviceBuffer, velocity: DeviceBuffer?, count: Int, _ c: SGDConfig)
    /// `step` counts from 1 (bias correction).
    func adamUpdate(param: DeviceBuffer, grad: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, count: Int, step: Int, _ c: AdamConfig)
    func rmspropUpdate(param: DeviceBuffer, grad: DeviceBuffer, meanSquare: DeviceBuffer, count: Int, _ c: RMSpropConfig)
}

/// Where an outer x rows x cols block lies in a buffer: element (o, r, c) at
/// offset + o * outerStride + r * rowStride + c.
public struct BlockLayout: Equatable, Sendable {
    public var offset: Int, outerStride: Int, rowStride: Int
    public init(offset: Int = 0, outerStride: Int = 0, rowStride: Int) {
        self.offset = offset; self.outerStride = outerStride; self.rowStride = rowStride
    }
}

extension Device {
    public func add(_ a: DeviceBuffer, _ b: DeviceBuffer, _ y: DeviceBuffer, count: Int) { add(a, b, y, count: count, relu: false) }
    public func batchNormApply(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer,
                               gamma: DeviceBuffer, beta: DeviceBuffer, epsilon: Float) {
        batchNormApply(x, y, rows: rows, channels: channels, mean: mean, variance: variance, gamma: gamma, beta: beta, epsilon: epsilon, relu: false)
    }
    /// Average pooling with padding excluded (TensorFlow, Keras).
    public func avgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry) { avgPool(x, y, g, countPadding: false) }
    public func avgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry) { avgPoolBackward(dy, dx, g, countPadding: false) }
    public func dropout(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, rate: Float, seed: UInt32) {
        dropout(x, y, count: count, rate: rate, seed: seed, indexOffset: 0)
    }
    /// Unweighted losses (every class weighs 1).
    public func softmaxCrossEntropy(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, classes: Int,
                                    loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float) {
        softmaxCrossEntropy(logits, labels: labels, rows: rows, classes: classes, loss: loss, dlogits: dlogits, gradScale: gradScale, classWeights: nil)
    }
    public func sigmoidBinaryCrossEntropy(_ logits: DeviceBuffer, targets: DeviceBuffer, count: Int,
                                          loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float) {
        sigmoidBinaryCrossEntropy(logits, targets: targets, count: count, loss: loss, dlogits: dlogits, gradScale: gradScale, classWeights: nil)
    }
}

/// Dropout's keep decision from a counter-based hash: the same bits on every backend, so the
/// CPU and OpenCL devices drop the same units for the same seed (Kernels/elementwise.cl has its twin).
@inline(__always)
public func dropoutKeep(seed: UInt32, index: UInt32, rate: Float) -> Bool {
    var h = index &* 0x9E37_79B9 ^ seed
    h ^= h >> 16; h = h &* 0x85EB_CA6B
    h ^= h >> 13; h = h &* 0xC2B2_AE35
    h ^= h >> 16
    return Float(h >> 8) * (1.0 / 16_777_216.0) >= rate
}

/// How one device computes one convolution geometry (NHWC input, HWIO kernel): the algorithm of
/// each pass, chosen by the device, named so that `vggtl bench --layers` can print it, with the
/// workspace each pass takes from the device's own workspace (DLPrimitives' ops do the same).
/// Layers hold one plan per input geometry and call only these; a plan handles any valid
/// geometry (each device falls back to im2col + GEMM where its fast algorithms do not apply).
/// A plan belongs to the device that made it, and, like the device, is used from one thread at
/// a time.
public protocol ConvolutionPlan: AnyObject {
    var geometry: WindowGeometry { get }
    /// Names of the algorithm each pass runs, e.g. "winograd-F(4x4,3x3)", "im2col-gemm(tile 4096 rows)",
    /// "gemm-1x1"; printed by `bench --layers`.
    var forwardAlgorithm: String { get }
    var backwardDataAlgorithm: String { get }
    var backwardFilterAlgorithm: String { get }
    /// Floats of device workspace each pass uses (taken from the device's own workspace; for a
    /// pass that may keep its transformed kernel, the size when it does not).
    var forwardWorkspace: Int { get }
    var backwardDataWorkspace: Int { get }
    var backwardFilterWorkspace: Int { get }
    /// y = conv(x, w) (+ bias) (then ReLU when relu). `kernelIsConstant`: the caller promises w is
    /// unchanged since the last call that passed true (a frozen layer); the plan may keep its
    /// transformed kernel instead of recomputing it. Plans still recompute when `w` is another
    /// tensor or its `version` moved (weights loaded again), and drop what they kept on the first
    /// call that passes false.
    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws
    /// dx (overwritten) = gradient with respect to the input.
    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws
    /// dw (HWIO) and db, overwritten.
    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws
    /// Frees what the plan keeps between calls (transformed kernels); the next call recomputes.
    /// A layer calls it on the plans of geometries it is not running now, so that a frozen layer
    /// seen at two batch sizes keeps one transformed kernel, not two.
    func releaseKeptKernels()
}

extension ConvolutionPlan {
    /// Plans that keep nothing between calls have nothing to free.
    public func releaseKeptKernels() {}
}

/// A device whose convolution plans can time their candidates at first use and keep the
/// fastest (OpenCL): whether they do, and what they chose so far as an entry of the device's
/// tuning table, ready to paste into it (`vggtl bench --tune`).
public protocol ConvolutionTuning: AnyObject {
    var convolutionAutotune: Bool { get }
    /// nil before any pass was tuned.
    var convolutionTuningEntry: String? { get }
}

/// A transformed kernel a plan keeps for a frozen layer: reused while calls pass
/// `kernelIsConstant` and the kernel is the same tensor at the same `version`, recomputed when
/// either changed, and freed as soon as a call passes false (the layer trains: it would be
/// recomputed every step anyway, so it should not hold memory).
struct KeptKernel {
    private weak var source: Tensor?
    private var version: UInt64 = 0
    private var buffer: DeviceBuffer?

    /// The kept transform of `w` (`fill` computes it into a buffer of `floats` when `w` changed),
    /// or nil when the kernel is not constant: the caller then transforms into its workspace.
    mutating func transform(of w: Tensor, constant: Bool, floats: Int, on device: Device,
                            fill: (DeviceBuffer) throws -> Void) throws -> DeviceBuffer? {
        guard constant else { release(); return nil }
        if let b = buffer, source === w, version == w.version, b.count >= floats { return b }
        let b: DeviceBuffer
        if let kept = buffer, kept.count >= floats { b = kept } else {
            buffer = nil
            b = try device.allocate(floats, what: "transformed kernel")
        }
        source = nil   // not valid until fill finished
        try fill(b)
        buffer = b; source = w; version = w.version
        return b
    }

    mutating func release() { buffer = nil; source = nil }

    /// Floats held (0 when nothing is kept), for tests and reports.
    var floats: Int { buffer?.count ?? 0 }
}

extension WindowGeometry {
    /// Checks that a convolution pass gets tensors of this geometry on `device`; the error names
    /// the pass and the tensor. Plans call it first: a wrong buffer must not be read past its end.
    func checkConvolution(_ pass: String, on device: Device, _ tensors: [(String, Tensor?, [Int])]) throws {
        for (what, t, shape) in tensors {
            guard let t else { continue }
            guard t.device === device else {
                throw VGGTLError.invalidArgument("convolution \(pass): \(what) is on \(t.device.name), the plan on \(device.name)")
            }
            guard t.count == shape.reduce(1, *) else {
                throw VGGTLError.shapeMismatch(what: "convolution \(pass) \(what)", expected: shape, got: t.shape)
            }
        }
    }

    /// The checks of each pass, for plans to call first.
    package func checkForward(on d: Device, x: Tensor, w: Tensor, bias: Tensor?, y: Tensor) throws {
        try checkConvolution("forward", on: d, [("x", x, inShape), ("kernel", w, kernelShape), ("bias", bias, [outC]), ("y", y, outShape)])
    }
    package func checkBackwardData(on d: Device, dy: Tensor, w: Tensor, dx: Tensor) throws {
        try checkConvolution("backward-data", on: d, [("dy", dy, outShape), ("kernel", w, kernelShape), ("dx", dx, inShape)])
    }
    package func checkBackwardFilter(on d: Device, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try checkConvolution("backward-filter", on: d, [("x", x, inShape), ("dy", dy, outShape), ("dw", dw, kernelShape), ("db", db, [outC])])
    }

    var inShape: [Int] { [batch, inH, inW, inC] }
    var kernelShape: [Int] { [kH, kW, inC, outC] }
}

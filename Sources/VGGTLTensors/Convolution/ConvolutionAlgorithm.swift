/// One pass of a convolution.
package enum ConvPass: String, CaseIterable, Sendable {
    case forward, backwardData = "backward-data", backwardFilter = "backward-filter"
}

/// What a convolution algorithm runs with on one device: the geometry of the plan, the device,
/// and the device's own workspace. Each backend's context adds what its own algorithms need
/// (the CPU's thread count, OpenCL's kernel builder and workspace slots).
package protocol ConvolutionContext {
    associatedtype Target: Device
    var geometry: WindowGeometry { get }
    var device: Target { get }
    /// At least `floats` of the device's workspace (shared by every convolution on the device).
    func workspace(_ floats: Int) throws -> DeviceBuffer
    /// The largest column tile (floats) of the im2col + GEMM path.
    var im2colTileFloats: Int { get }
}

extension ConvolutionContext {
    /// Whether the geometry is a 1x1 stride-1 unpadded convolution: one GEMM per pass.
    package var isPointwise: Bool { PointwiseGemm<Self>.applies(geometry) }
}

/// One way of computing a convolution, as a value: its parameters (a tile shape, a Winograd
/// variant, a split count) are its stored properties, so two values are equal when they run the
/// same computation. Each backend's plan holds a list of them and picks one per pass, by its
/// heuristics or by timing them (DLPrimitives' Conv2DForward/BackwardData/BackwardFilter
/// objects, src/core/conv.cpp, each with `algo()` and `workspace()`). Adding an algorithm is a
/// file with one such type and a line in the backend's candidate list.
package protocol ConvolutionAlgorithm<Context>: Hashable {
    associatedtype Context: ConvolutionContext
    /// Whether it computes `pass` for the context's geometry.
    func supports(_ pass: ConvPass, _ c: Context) -> Bool
    /// What `bench --layers` prints, e.g. "winograd-F(4x4,3x3)", "implicit-gemm(64x32x16/4x4)".
    func name(_ pass: ConvPass, _ c: Context) -> String
    /// Floats of device workspace the pass takes (for a pass that may keep its transformed
    /// kernel, the size when it does not).
    func workspace(_ pass: ConvPass, _ c: Context) -> Int
    /// y = conv(x, w) (+ bias) (then ReLU); see `ConvolutionPlan.forward`.
    func forward(_ c: Context, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws
    /// dx, overwritten.
    func backwardData(_ c: Context, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws
    /// dw and db, overwritten.
    func backwardFilter(_ c: Context, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws
}

/// The passes an algorithm does not compute: it says so, naming itself (plans only run passes
/// an algorithm supports; tests call them directly).
extension ConvolutionAlgorithm {
    package func forward(_ c: Context, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        throw unsupported(.forward, c)
    }
    package func backwardData(_ c: Context, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        throw unsupported(.backwardData, c)
    }
    package func backwardFilter(_ c: Context, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        throw unsupported(.backwardFilter, c)
    }

    package func unsupported(_ pass: ConvPass, _ c: Context) -> VGGTLError {
        .invalidArgument("\(name(pass, c)) has no \(pass.rawValue) pass")
    }

    /// Whether `other` is this very algorithm (same type and parameters).
    package func isSame(as other: any ConvolutionAlgorithm) -> Bool { AnyHashable(self) == AnyHashable(other) }
}

/// The transformed kernels one plan keeps for a frozen layer (Winograd's U, a copy in another
/// layout), one per pass, each tagged with the algorithm that made it: a pass that switches
/// algorithm starts afresh.
package final class KeptKernels {
    private var entries: [ConvPass: (owner: AnyHashable, kernel: KeptKernel)] = [:]

    package init() {}

    /// The kept transform of `w` for `pass` by `owner` (see `KeptKernel.transform`), or nil when
    /// the kernel is not constant: the caller then transforms into its workspace.
    package func transform(_ pass: ConvPass, by owner: AnyHashable, of w: Tensor, constant: Bool, floats: Int, on device: Device,
                   fill: (DeviceBuffer) throws -> Void) throws -> DeviceBuffer? {
        var entry = entries[pass].flatMap { $0.owner == owner ? $0.kernel : nil } ?? KeptKernel()
        defer { entries[pass] = (owner, entry) }
        return try entry.transform(of: w, constant: constant, floats: floats, on: device, fill: fill)
    }

    package func release() { entries = [:] }

    /// Floats held now (tests, reports).
    package var floats: Int { entries.values.reduce(0) { $0 + $1.kernel.floats } }
}

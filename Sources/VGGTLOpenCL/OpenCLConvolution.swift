import Foundation
import VGGTLTensors

extension OpenCLDevice {
    /// Which convolution algorithms an OpenCL device's plans may choose among. `auto`: all that
    /// apply (implicit GEMM, split-K, Winograd F(4x4)/F(2x2), CLBlast's convgemm, im2col + GEMM),
    /// timed at first use on GPUs. The others restrict the choice, for comparisons: `implicit`
    /// (implicit GEMM and split-K), `winograd2`/`winograd4` (that variant where it applies),
    /// `im2col` (im2col tiles + CLBlast GEMM, the generic path), `clblast` (CLBlast's convgemm for
    /// forward passes it can do, the generic path otherwise). Where a family does not apply to
    /// a geometry the generic path runs.
    public enum ConvolutionFamily: String, Sendable, CaseIterable {
        case auto, implicit, winograd2, winograd4, im2col, clblast
    }

    /// Tuning knobs of one OpenCL device, fixed when it opens. The CLI reads them from its knob
    /// table (the environment variables named below).
    public struct Options: Sendable, Equatable {
        /// The largest im2col tile (floats) of the tiled im2col path.
        public var im2colTileFloats: Int
        /// `VGGTL_OCL_CONV`.
        public var convolution: ConvolutionFamily
        /// `VGGTL_OCL_AUTOTUNE=1|0`: time the candidates of each pass at first use and keep the
        /// fastest (cached on disk with the kernels). nil: on for GPUs and accelerators, off for
        /// OpenCL on a CPU, where speed says nothing about a GPU.
        public var autotune: Bool?
        /// `VGGTL_OCL_TILE=128x64x16/8x4`: this GEMM tile shape (rows x columns x reduction step /
        /// outputs per work item) instead of the device table's (`Options.tile(parsing:)` checks one).
        public var tile: String?
        /// `VGGTL_OCL_WORKSPACE_MB`: the most memory one workspace slot of a pass may take
        /// (Winograd's transformed tiles and products, split-K's partial sums).
        public var workspaceBytes: Int
        /// `VGGTL_CLBLAST_XGEMM=MWG=64,NWG=64,...`: CLBlast's Xgemm parameters for this device, as
        /// clblast_tuner_xgemm prints them (passed to `CLBlastOverrideParameters`).
        public var clblastXgemm: [String: Int]
        /// `VGGTL_OCL_TUNE_REPORT=FILE`: append what each autotune measured (one line per pass and
        /// geometry, candidates fastest first) to FILE.
        public var tuneReport: String?
        /// `VGGTL_KERNEL_CACHE`: the folder of built kernels and tuning choices (keyed by device,
        /// driver, source and options); nil: no cache, every kernel is built at open.
        public var kernelCache: URL?

        public init(im2colTileFloats: Int = 16 << 20, convolution: ConvolutionFamily = .auto, autotune: Bool? = nil,
                    tile: String? = nil, workspaceBytes: Int = 128 << 20, clblastXgemm: [String: Int] = [:],
                    tuneReport: String? = nil, kernelCache: URL? = Options.defaultKernelCache) {
            self.im2colTileFloats = im2colTileFloats; self.convolution = convolution; self.autotune = autotune
            self.tile = tile; self.workspaceBytes = workspaceBytes; self.clblastXgemm = clblastXgemm
            self.tuneReport = tuneReport; self.kernelCache = kernelCache
        }

        /// ~/.cache/vggtl/kernels.
        public static var defaultKernelCache: URL {
            URL(fileURLWithPath: NSHomeDirectory(), isDirectory: true).appendingPathComponent(".cache/vggtl/kernels", isDirectory: true)
        }

        /// `text` as a GEMM tile shape the implicit-GEMM kernels can run ("128x64x16/8x4": TM, TN
        /// divisible by WM, WN; the work items a multiple of TK), in its normal form; nil otherwise.
        public static func tile(parsing text: String) -> String? {
            guard let t = ConvTile(text), t.fitsRowStaging else { return nil }
            return t.description
        }
    }

    public func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan {
        OpenCLConvolutionPlan(device: self, geometry: g)
    }
}

import Foundation

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

    /// Tuning knobs of one OpenCL device, fixed when it opens. `fromEnvironment` reads them for a
    /// run (`DeviceChoice.open` does so).
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
        /// outputs per work item) instead of the device table's.
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

        public init(im2colTileFloats: Int = 16 << 20, convolution: ConvolutionFamily = .auto, autotune: Bool? = nil,
                    tile: String? = nil, workspaceBytes: Int = 128 << 20, clblastXgemm: [String: Int] = [:],
                    tuneReport: String? = nil) {
            self.im2colTileFloats = im2colTileFloats; self.convolution = convolution; self.autotune = autotune
            self.tile = tile; self.workspaceBytes = workspaceBytes; self.clblastXgemm = clblastXgemm
            self.tuneReport = tuneReport
        }

        /// The defaults with VGGTL_OCL_CONV, VGGTL_OCL_AUTOTUNE, VGGTL_OCL_TILE,
        /// VGGTL_OCL_WORKSPACE_MB, VGGTL_CLBLAST_XGEMM and VGGTL_OCL_TUNE_REPORT applied; a value that does not parse is
        /// an error naming the variable.
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Options {
            var o = Options()
            func bad(_ name: String, _ value: String, _ expected: String) -> VGGTLError {
                .badFlag(flag: "\(name) (environment variable)", value: value, expected: expected)
            }
            if let text = environment["VGGTL_OCL_CONV"], !text.isEmpty {
                guard let f = ConvolutionFamily(rawValue: text) else {
                    throw bad("VGGTL_OCL_CONV", text, ConvolutionFamily.allCases.map(\.rawValue).joined(separator: ", "))
                }
                o.convolution = f
            }
            if let text = environment["VGGTL_OCL_AUTOTUNE"], !text.isEmpty {
                switch text.lowercased() {
                case "1", "on", "yes", "true": o.autotune = true
                case "0", "off", "no", "false": o.autotune = false
                default: throw bad("VGGTL_OCL_AUTOTUNE", text, "1 or 0")
                }
            }
            if let text = environment["VGGTL_OCL_TILE"], !text.isEmpty {
                guard let t = ConvTile(text), t.fitsRowStaging else {
                    throw bad("VGGTL_OCL_TILE", text, "a tile TMxTNxTK/WMxWN such as 128x64x16/8x4 (TM, TN divisible by WM, WN; the work items a multiple of TK)")
                }
                o.tile = t.description
            }
            if let text = environment["VGGTL_OCL_WORKSPACE_MB"], !text.isEmpty {
                guard let mb = Int(text), mb > 0 else { throw bad("VGGTL_OCL_WORKSPACE_MB", text, "a positive number of MiB (default 128)") }
                o.workspaceBytes = mb << 20
            }
            if let text = environment["VGGTL_CLBLAST_XGEMM"], !text.isEmpty {
                for item in text.split(separator: ",") {
                    let kv = item.split(separator: "=")
                    guard kv.count == 2, let value = Int(kv[1].trimmingCharacters(in: .whitespaces)) else {
                        throw bad("VGGTL_CLBLAST_XGEMM", text, "NAME=VALUE pairs separated by commas, e.g. MWG=64,NWG=64,KWG=16")
                    }
                    o.clblastXgemm[kv[0].trimmingCharacters(in: .whitespaces)] = value
                }
            }
            if let text = environment["VGGTL_OCL_TUNE_REPORT"], !text.isEmpty { o.tuneReport = text }
            return o
        }
    }

    public func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan {
        OpenCLConvolutionPlan(device: self, geometry: g)
    }
}

/// The tile shape of one specialised GEMM kernel of Kernels/conv/ (CLBlast's MWG, NWG, KWG, MWI,
/// NWI): a work-group computes `tm x tn` outputs in steps of `tk` along the reduction, each work
/// item `wm x wn` of them, so a work-group has (tm / wm) x (tn / wn) items.
struct ConvTile: Hashable, Sendable, CustomStringConvertible {
    var tm: Int, tn: Int, tk: Int, wm: Int, wn: Int

    var threads: Int { (tm / wm) * (tn / wn) }
    /// "128x64x16/8x4".
    var description: String { "\(tm)x\(tn)x\(tk)/\(wm)x\(wn)" }

    init(_ tm: Int, _ tn: Int, _ tk: Int, _ wm: Int, _ wn: Int) {
        self.tm = tm; self.tn = tn; self.tk = tk; self.wm = wm; self.wn = wn
    }

    /// Parses `description` ("128x64x16/8x4").
    init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == "x" || $0 == "/" }).compactMap { Int($0) }
        guard parts.count == 5 else { return nil }
        self.init(parts[0], parts[1], parts[2], parts[3], parts[4])
    }

    /// The -D constants of gemm_tile.h.
    var defines: [(String, Int)] { [("TM", tm), ("TN", tn), ("TK", tk), ("WM", wm), ("WN", wn)] }

    /// Whether the staging loops of the forward/Winograd GEMMs divide evenly with this shape
    /// (each item loads whole rows of the A and B tiles; see Kernels/conv/implicit_gemm.cl).
    var fitsRowStaging: Bool {
        guard [tm, tn, tk, wm, wn].allSatisfy({ $0 > 0 }), tm % wm == 0, tn % wn == 0 else { return false }
        let nt = threads
        return nt % tk == 0 && tm % (nt / tk) == 0 && (tk * tn) % nt == 0
    }

    /// Whether the split-K kernel-gradient staging divides evenly (items own A tile columns).
    var fitsColumnStaging: Bool {
        guard fitsRowStaging else { return false }
        let nt = threads
        return nt % tm == 0 && tk % (nt / tm) == 0 && nt >= tn
    }

    /// Local memory of one work-group, bytes.
    var localBytes: Int { 4 * tk * (tm + 1 + tn + 1) }

    /// Outputs an m x n GEMM computes with this tile, padding included.
    func paddedWork(m: Int, n: Int) -> Double {
        Double((m + tm - 1) / tm * tm) * Double((n + tn - 1) / tn * tn)
    }
}

/// What a device is, for choosing tile shapes (Tuning/ConvTileTable.swift).
struct OpenCLDeviceClass: Sendable, Equatable {
    /// CL_DEVICE_VENDOR, e.g. "NVIDIA Corporation", "Advanced Micro Devices, Inc.", "Intel(R) Corporation".
    var vendor: String
    /// "SM9.0" for NVIDIA (compute capability), the device name for AMD (gfx90a), else "".
    var architecture: String
    /// CL_DEVICE_NAME.
    var device: String
    var type: OpenCLDeviceType
}

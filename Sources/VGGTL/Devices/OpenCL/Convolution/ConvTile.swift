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
}

/// What a device is, for choosing tile shapes: CLBlast's habit of a table that falls back from
/// the device name to its architecture, then its vendor, then a default.
struct OpenCLDeviceClass: Sendable, Equatable {
    /// CL_DEVICE_VENDOR, e.g. "NVIDIA Corporation", "Advanced Micro Devices, Inc.", "Intel(R) Corporation".
    var vendor: String
    /// "SM9.0" for NVIDIA (compute capability), the device name for AMD (gfx90a), else "".
    var architecture: String
    /// CL_DEVICE_NAME.
    var device: String
    var type: OpenCLDeviceType
}

/// Tile shapes per device class. The first shape of an entry is the default; the others are the
/// candidates a first-use autotune times. An entry matches when each of its given fields is
/// contained in the device's (case-insensitively); the most specific match wins (device, then
/// architecture, then vendor, then the type's default).
enum ConvTileTable {
    struct Entry: Sendable {
        var vendor: String? = nil, architecture: String? = nil, device: String? = nil
        var type: OpenCLDeviceType? = nil
        var tiles: [ConvTile]
        var specificity: Int {
            (device != nil ? 8 : 0) + (architecture != nil ? 4 : 0) + (vendor != nil ? 2 : 0) + (type != nil ? 1 : 0)
        }
    }

    /// Not yet tuned on a card: shapes in the range sgemm kernels use on each kind of device.
    /// The GPU session's autotune (and `bench --layers`) decides among them; put the winners
    /// first here when they are known.
    static let entries: [Entry] = [
        // Large GPUs: 256-item work-groups, 8x8 outputs per item (CLBlast's NVIDIA Xgemm picks
        // are in this range), a narrower tile for 64-channel layers, and a smaller square tile.
        // 32x64 with 2x4 per item is for GEMMs with few rows: the 27-row kernel gradient of a
        // 3-channel first layer (block1_conv1), small Winograd chunks.
        Entry(type: .gpu, tiles: [ConvTile(128, 128, 16, 8, 8), ConvTile(128, 64, 16, 8, 4), ConvTile(64, 64, 16, 4, 4),
                                  ConvTile(64, 128, 16, 4, 8), ConvTile(32, 64, 16, 2, 4)]),
        Entry(vendor: "NVIDIA", tiles: [ConvTile(128, 128, 16, 8, 8), ConvTile(128, 64, 16, 8, 4), ConvTile(64, 64, 16, 4, 4),
                                        ConvTile(32, 64, 16, 2, 4)]),
        Entry(vendor: "Advanced Micro Devices", tiles: [ConvTile(128, 128, 16, 8, 8), ConvTile(64, 64, 16, 4, 4), ConvTile(128, 64, 16, 8, 4),
                                                        ConvTile(32, 64, 16, 2, 4)]),
        Entry(vendor: "Intel", type: .gpu, tiles: [ConvTile(64, 64, 16, 4, 4), ConvTile(64, 32, 16, 4, 4), ConvTile(32, 32, 16, 4, 4)]),
        // OpenCL on a CPU (PoCL): small work-groups, tiles that stay in L1.
        Entry(type: .cpu, tiles: [ConvTile(32, 32, 16, 4, 4), ConvTile(64, 32, 16, 4, 4)]),
        Entry(tiles: [ConvTile(64, 64, 16, 4, 4), ConvTile(32, 32, 16, 4, 4)]),
    ]

    static func tiles(for d: OpenCLDeviceClass) -> [ConvTile] {
        func has(_ field: String, _ part: String?) -> Bool {
            part.map { field.range(of: $0, options: .caseInsensitive) != nil } ?? true
        }
        let matching = entries.filter {
            has(d.vendor, $0.vendor) && has(d.architecture, $0.architecture) && has(d.device, $0.device)
                && ($0.type.map { $0 == d.type } ?? true)
        }
        return matching.max { $0.specificity < $1.specificity }?.tiles ?? entries.last!.tiles
    }
}

/// The GEMM tile shapes of the convolution kernels per device, as data: one file per device
/// family in this folder (as CLBlast's src/database/kernels/), each a `Family` with its own list
/// and lists for architectures and devices within it. A list's first shape is the default (what
/// runs without an autotune, among the shapes that pad a GEMM least); the others are the
/// candidates a first-use autotune times. `vggtl bench --tune` prints a device's entry from its
/// autotune, ready to paste into its family's file.
///
/// Lookup, most specific first: the family of the device's vendor and type (the vendor string
/// is contained in CL_DEVICE_VENDOR, case-insensitively; a family with both beats one with the
/// vendor only, which beats one with the type only), within it the first device entry contained
/// in CL_DEVICE_NAME, else the first architecture entry contained in the device's architecture,
/// else the family's list; a device that no family takes gets `fallback` (Default.swift).
enum ConvTileTable {
    struct Family: Sendable {
        /// Names the family's file, Tuning/<name>.swift.
        var name: String
        var vendor: String? = nil
        var type: OpenCLDeviceType? = nil
        var tiles: [String]
        var architectures: [Entry] = []
        var devices: [Entry] = []

        var specificity: Int { (vendor != nil ? 2 : 0) + (type != nil ? 1 : 0) }

        func matches(_ d: OpenCLDeviceClass) -> Bool {
            contains(d.vendor, vendor) && (type.map { $0 == d.type } ?? true)
        }

        /// The list of the device's entry in this family, else the family's own.
        func tiles(for d: OpenCLDeviceClass) -> [String] {
            devices.first { contains(d.device, $0.name) }?.tiles
                ?? architectures.first { contains(d.architecture, $0.name) }?.tiles
                ?? tiles
        }
    }

    /// Tiles for one device (by CL_DEVICE_NAME) or architecture ("SM9.0", "gfx90a").
    struct Entry: Sendable {
        var name: String
        var tiles: [String]
        init(_ name: String, _ tiles: [String]) { self.name = name; self.tiles = tiles }
    }

    /// Every family but the fallback; add a file's family here.
    static let families: [Family] = [.gpus, .nvidia, .amd, .intelGPUs, .cpus]

    static func family(for d: OpenCLDeviceClass) -> Family {
        families.filter { $0.matches(d) }.max { $0.specificity < $1.specificity } ?? .fallback
    }

    static func tiles(for d: OpenCLDeviceClass) -> [ConvTile] {
        family(for: d).tiles(for: d).map(parse)
    }

    /// A tile of the table; they are ours, so one that does not parse is a bug (and
    /// OpenCLConvolutionTests reads every one).
    static func parse(_ text: String) -> ConvTile {
        guard let t = ConvTile(text) else { preconditionFailure("Tuning/: \(text) is not a tile TMxTNxTK/WMxWN") }
        return t
    }
}

/// `field` contains `part` (case-insensitively); no part matches anything.
private func contains(_ field: String, _ part: String?) -> Bool {
    part.map { field.range(of: $0, options: .caseInsensitive) != nil } ?? true
}

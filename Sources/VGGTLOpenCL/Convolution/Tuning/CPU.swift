extension ConvTileTable.Family {
    /// OpenCL on a CPU (PoCL, Intel's CPU runtime): small work-groups, tiles that stay in L1.
    static let cpus = ConvTileTable.Family(
        name: "CPU", type: .cpu,
        tiles: ["32x32x16/4x4", "64x32x16/4x4"],
        architectures: [],
        devices: [])
}

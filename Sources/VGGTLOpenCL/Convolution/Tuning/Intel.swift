extension ConvTileTable.Family {
    /// Intel GPUs (CL_DEVICE_VENDOR "Intel(R) Corporation"): smaller work-groups. Not yet tuned
    /// on a card.
    static let intelGPUs = ConvTileTable.Family(
        name: "Intel", vendor: "Intel", type: .gpu,
        tiles: ["64x64x16/4x4", "64x32x16/4x4", "32x32x16/4x4"],
        architectures: [],
        devices: [])
}

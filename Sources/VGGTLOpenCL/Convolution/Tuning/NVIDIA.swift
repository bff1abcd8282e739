extension ConvTileTable.Family {
    /// NVIDIA (CL_DEVICE_VENDOR "NVIDIA Corporation"; architectures "SM9.0" from the compute
    /// capability). Not yet tuned on a card: the GPU shapes without 64x128.
    static let nvidia = ConvTileTable.Family(
        name: "NVIDIA", vendor: "NVIDIA",
        tiles: ["128x128x16/8x8", "128x64x16/8x4", "64x64x16/4x4", "32x64x16/2x4"],
        architectures: [],
        devices: [])
}

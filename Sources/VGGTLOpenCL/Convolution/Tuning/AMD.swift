extension ConvTileTable.Family {
    /// AMD (CL_DEVICE_VENDOR "Advanced Micro Devices, Inc."; the architecture is the device
    /// name, e.g. "gfx90a"). Not yet tuned on a card.
    static let amd = ConvTileTable.Family(
        name: "AMD", vendor: "Advanced Micro Devices",
        tiles: ["128x128x16/8x8", "64x64x16/4x4", "128x64x16/8x4", "32x64x16/2x4"],
        architectures: [],
        devices: [])
}

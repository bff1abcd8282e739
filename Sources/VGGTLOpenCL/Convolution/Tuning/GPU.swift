extension ConvTileTable.Family {
    /// GPUs of a vendor without a family of its own. Large GPUs: 256-item work-groups, 8x8
    /// outputs per item (CLBlast's NVIDIA Xgemm picks are in this range), a narrower tile for
    /// 64-channel layers, and a smaller square tile. 32x64 with 2x4 per item is for GEMMs with
    /// few rows: the 27-row kernel gradient of a 3-channel first layer (block1_conv1), small
    /// Winograd chunks.
    static let gpus = ConvTileTable.Family(
        name: "GPU", type: .gpu,
        tiles: ["128x128x16/8x8", "128x64x16/8x4", "64x64x16/4x4", "64x128x16/4x8", "32x64x16/2x4"])
}

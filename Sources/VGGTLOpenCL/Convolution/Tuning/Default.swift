extension ConvTileTable.Family {
    /// A device no other family takes (an accelerator of an unknown vendor): middling tiles.
    static let fallback = ConvTileTable.Family(
        name: "Default",
        tiles: ["64x64x16/4x4", "32x32x16/4x4"])
}

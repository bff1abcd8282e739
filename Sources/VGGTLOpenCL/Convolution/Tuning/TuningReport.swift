import VGGTLTensors

/// One autotune result: the winning algorithm's kind ("implicit-gemm", "winograd-F(4x4,3x3)";
/// the whole name for untiled ones) and its tile.
struct TunedChoice: Sendable {
    var kind: String
    var tile: ConvTile?
}

extension OpenCLConvolutionKernels {
    /// This device's entry for its family's file in Tuning/, from the autotune's choices so far
    /// (nil before any): the tiles that won, most wins first, then the rest of the device's
    /// list, which later autotunes still time. Comment lines say what was tuned and where the
    /// entry goes, e.g.
    ///
    ///     // Autotune on opencl:0 (NVIDIA H200, NVIDIA CUDA): vendor "NVIDIA Corporation", architecture "SM9.0", type gpu
    ///     // 38 passes tuned: winograd-F(4x4,3x3) 20, split-k 9, implicit-gemm 7, gemm-col2im(tile 1024 rows) 2
    ///     // Tiles that won: 128x64x16/8x4 21, 64x64x16/4x4 9, 32x64x16/2x4 6
    ///     // For Tuning/NVIDIA.swift, in devices:
    ///     ConvTileTable.Entry("NVIDIA H200", ["128x64x16/8x4", "64x64x16/4x4", "32x64x16/2x4", "128x128x16/8x8"]),
    func tuningEntry() -> String? {
        let choices = Array(tunedChoices.values)
        guard !choices.isEmpty else { return nil }
        let d = deviceClass
        let table = ConvTileTable.tiles(for: d)
        var wins: [ConvTile: Int] = [:], kinds: [String: Int] = [:]
        for c in choices {
            kinds[c.kind, default: 0] += 1
            if let t = c.tile { wins[t, default: 0] += 1 }
        }
        // Most wins first; ties in the table's order (a tile forced by VGGTL_OCL_TILE after), then by name.
        func first(_ a: ConvTile, _ b: ConvTile) -> Bool {
            if wins[a] != wins[b] { return wins[a, default: 0] > wins[b, default: 0] }
            let ra = table.firstIndex(of: a) ?? table.count, rb = table.firstIndex(of: b) ?? table.count
            return ra != rb ? ra < rb : a.description < b.description
        }
        let winners = wins.keys.sorted(by: first)
        let list = winners + table.filter { wins[$0] == nil }
        let kindCounts = kinds.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return """
        // Autotune on \(device.name): vendor "\(d.vendor)", architecture "\(d.architecture)", type \(d.type.rawValue)
        // \(choices.count) passes tuned: \(kindCounts.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        // Tiles that won: \(winners.isEmpty ? "none" : winners.map { "\($0) \(wins[$0]!)" }.joined(separator: ", "))
        // For Tuning/\(ConvTileTable.family(for: d).name).swift, in devices:
        ConvTileTable.Entry("\(d.device)", [\(list.map { "\"\($0)\"" }.joined(separator: ", "))]),
        """
    }
}

extension OpenCLDevice: ConvolutionTuning {
    public var convolutionAutotune: Bool { convolutionKernels.options.autotune }
    public var convolutionTuningEntry: String? { convolutionKernels.tuningEntry() }
}

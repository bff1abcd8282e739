/// One autotune result: the winning algorithm's kind ("implicit-gemm", "winograd-F(4x4,3x3)";
/// the whole name for untiled ones) and its tile.
struct TunedChoice: Sendable {
    var kind: String
    var tile: ConvTile?
}

extension OpenCLConvolutionKernels {
    /// This device's entry for its family's file in Tuning/, from the autotune's choices so far
    /// (nil before any): the tiles that won, most wins first (ties in table order), then the
    /// rest of the device's list, which later autotunes still time. Comment lines say what was
    /// tuned and where the entry goes.
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
        func rank(_ t: ConvTile) -> Int { table.firstIndex(of: t) ?? tiles.firstIndex(of: t).map { table.count + $0 } ?? Int.max }
        let winners = wins.keys.sorted { (wins[$0]!, -rank($0)) > (wins[$1]!, -rank($1)) }
        let list = winners + table.filter { !winners.contains($0) }
        func counts(_ c: [(String, Int)]) -> String { c.map { "\($0.0) \($0.1)" }.joined(separator: ", ") }
        let family = ConvTileTable.family(for: d)
        let quoted = list.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
        // Autotune on \(device.name): vendor "\(d.vendor)", architecture "\(d.architecture)", type \(d.type.rawValue)
        // \(choices.count) passes tuned: \(counts(kinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ($0.key, $0.value) }))
        // Tiles that won: \(winners.isEmpty ? "none" : counts(winners.map { ($0.description, wins[$0]!) }))
        // For Tuning/\(family.name).swift, in devices:
        ConvTileTable.Entry("\(d.device)", [\(quoted)]),
        """
    }
}

extension OpenCLDevice: ConvolutionTuning {
    public var convolutionAutotune: Bool { convolutionKernels.options.autotune }
    public var convolutionTuningEntry: String? { convolutionKernels.tuningEntry() }
}

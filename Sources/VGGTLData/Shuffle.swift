import VGGTLTensors

/// Derives a seed from several values (SplitMix64 finalizer over each): the random numbers of
/// (seed, epoch, index) are independent of one another and of thread timing.
func mixSeed(_ values: UInt64...) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3
    for v in values {
        h ^= v &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
    }
    return h
}

/// Fisher-Yates with our own generator and bounded draw, so the order is the same with any
/// Swift standard library (whose shuffle algorithm is not promised to stay the same).
func seededShuffle<T>(_ items: inout [T], rng: inout SeededGenerator) {
    guard items.count > 1 else { return }
    for i in stride(from: items.count - 1, to: 0, by: -1) {
        // Multiply-shift maps 64 random bits onto 0...i.
        let j = Int(rng.next().multipliedFullWidth(by: UInt64(i + 1)).high)
        items.swapAt(i, j)
    }
}

/// Splits indices 0..<labels.count for `--val-split`: within each class, a seeded shuffle,
/// then the last `fraction` (rounded) goes to validation; every class keeps at least one
/// training image; `minimumPerClass`: a class with more images than that gives at least that
/// many to validation. Both lists come back sorted.
public func stratifiedSplit(labels: [Int], fraction: Double, seed: UInt64, minimumPerClass: Int = 0) -> (train: [Int], validation: [Int]) {
    precondition(fraction >= 0 && fraction < 1, "validation fraction \(fraction) must be in [0, 1)")
    var byClass: [Int: [Int]] = [:]
    for (i, label) in labels.enumerated() { byClass[label, default: []].append(i) }
    var train: [Int] = [], validation: [Int] = []
    for label in byClass.keys.sorted() {
        var members = byClass[label]!
        var rng = SeededGenerator(seed: mixSeed(seed, UInt64(bitPattern: Int64(label)), 0x5EED_5B17))
        seededShuffle(&members, rng: &rng)
        let nVal = min(max(Int((fraction * Double(members.count)).rounded()), minimumPerClass), members.count - 1)
        train += members[..<(members.count - nVal)]
        validation += members[(members.count - nVal)...]
    }
    return (train.sorted(), validation.sorted())
}

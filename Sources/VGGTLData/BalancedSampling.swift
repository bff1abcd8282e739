import VGGTLTensors

/// `--sampler balanced` (PyTorch's WeightedRandomSampler with weights 1/n_c, Keras users'
/// "oversample the minority"): an epoch of as many draws as there are samples, every class drawn
/// equally often (to within one). Returns positions into `labels`, in visiting order.
///
/// Within a class the draws go through a fresh shuffle of its members each round, so a small
/// class repeats its images evenly and a large one is subsampled without repeats. The order
/// depends only on (seed, epoch): a resumed epoch draws the same batches as an uninterrupted one.
public func balancedOrder(labels: [Int], seed: UInt64, epoch: Int) -> [Int] {
    var byClass: [Int: [Int]] = [:]
    for (position, label) in labels.enumerated() { byClass[label, default: []].append(position) }
    let classes = byClass.keys.sorted()
    guard !classes.isEmpty else { return [] }
    let e = UInt64(bitPattern: Int64(epoch))
    // Equal shares; the remainder goes to classes chosen at random each epoch.
    var lucky = classes
    var rng = SeededGenerator(seed: mixSeed(seed, e, 0xBA1A_4CED))
    seededShuffle(&lucky, rng: &rng)
    let share = labels.count / classes.count, extra = Set(lucky.prefix(labels.count % classes.count))
    var order: [Int] = []
    order.reserveCapacity(labels.count)
    for c in classes {
        let members = byClass[c]!
        var classRng = SeededGenerator(seed: mixSeed(seed, e, UInt64(bitPattern: Int64(c)), 0xBA1A_4CED))
        var round: [Int] = []
        for _ in 0..<(share + (extra.contains(c) ? 1 : 0)) {
            if round.isEmpty { round = members; seededShuffle(&round, rng: &classRng) }
            order.append(round.removeLast())
        }
    }
    seededShuffle(&order, rng: &rng)
    return order
}

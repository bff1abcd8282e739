import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain

/// Data-parallel training over MPI, one rank per device, as PyTorch DDP and Horovod do it:
/// every rank holds the whole model, trains on its share of each step's global batch, and the
/// gradients are summed across ranks during backward, so all ranks apply the same update and
/// stay identical. Joins a Trainer as its `coordinator`.
///
/// With `ranks` ranks at batch B, a step is the step one process would take at batch
/// ranks * B: the loss gradient is scaled by 1/(global batch), so the sum over ranks is the
/// global mean; dropout draws each sample's mask from its position in the global batch;
/// `--sync-bn` computes BatchNorm statistics over the global batch (without it, each rank
/// normalises with its own share's statistics, as DDP does by default). Both travel in the
/// step's `StepContext`, which `prepareStep` builds.
public final class DataParallel: TrainingCoordinator {
    public let comm: Communicator
    public let train: ShardedBatches
    public let syncBatchNorm: Bool
    let buckets: GradientBuckets
    /// Samples of the step in progress (after the agreement), for the gradient scale; steps run.
    private var planned = 0, agreedSamples = 0, steps = 0
    /// Per step: seconds waiting for gradients after backward, and bytes reduced (for bench).
    public private(set) var stepWaits: [Double] = []
    public var gradientBytes: Int { buckets.bytes }

    public init(comm: Communicator, train: ShardedBatches, syncBatchNorm: Bool, bucketMegabytes: Double = 25,
                compression: GradientCompression = .none) {
        self.comm = comm
        self.train = train
        self.syncBatchNorm = syncBatchNorm
        buckets = GradientBuckets(comm: comm, megabytes: bucketMegabytes, compression: compression)
    }

    public var isPrimary: Bool { comm.rank == 0 }

    // MARK: - Steps

    public func prepareStep(_ batch: Batch, model: Model) throws -> (batch: Batch, gradientScale: Float, context: StepContext) {
        guard let step = train.current else {
            throw comm.fail("a training batch came from outside the sharded loader (internal error)")
        }
        buckets.begin(model.network.trainableParameters)
        planned = step.count
        let context = StepContext(training: true, sampleOffset: step.offset,
                                  statisticsSync: syncBatchNorm ? SyncBatchNorm(comm: comm, standIn: batch.count == 0) : nil)
        guard batch.count == 0 else { return (batch, 1 / Float(step.count), context) }
        // Fewer samples than ranks in this step (or all of this rank's images unreadable): one
        // zero image with gradient scale 0 keeps this rank in the step's reductions.
        let n = model.config.inputShape.reduce(1, *)
        return (Batch(x: [Float](repeating: 0, count: n), labels: [Float](repeating: 0, count: model.config.targetWidth), indices: [], count: 1), 0, context)
    }

    public func agree(_ local: StepTotals) throws -> StepTotals {
        // Stop requests are counted per kind, so the sum says which signal arrived where.
        var v: [Double] = [local.lossSum, Double(local.correct), Double(local.samples), local.nonFinite ? 1 : 0,
                           local.signal == SIGINT ? 1 : 0, local.signal == SIGTERM ? 1 : 0, local.signal == SIGUSR1 ? 1 : 0]
        steps += 1
        try comm.allreduce(&v, what: "step \(steps)'s totals (loss, accuracy, stop requests)")
        agreedSamples = Int(v[2])
        let signal: Int32 = v[4] > 0 ? SIGINT : v[5] > 0 ? SIGTERM : v[6] > 0 ? SIGUSR1 : 0
        return StepTotals(lossSum: v[0], correct: Int(v[1]), samples: Int(v[2]), nonFinite: v[3] > 0, signal: signal)
    }

    public func gradientsReady(_ parameters: [Parameter]) { buckets.ready(parameters) }

    public func finishGradients(_ parameters: [Parameter]) throws {
        // The loss was scaled by 1/(planned samples); images that could not be read make the
        // true count smaller: rescale so the update uses the mean over the samples seen.
        let scale = agreedSamples > 0 && agreedSamples != planned ? Float(planned) / Float(agreedSamples) : 1
        try buckets.finish(scale: scale)
        stepWaits.append(buckets.lastWait)
    }

    public func finishAccumulatedGradients(_ parameters: [Parameter], samples: Int) throws {
        // One reduction per optimiser step: the sums of every batch of the step, then the mean.
        try buckets.finish(scale: 1 / Float(max(samples, 1)))
        stepWaits.append(buckets.lastWait)
    }

    public func reduce(_ metrics: EpochMetrics) throws -> EpochMetrics {
        var v = [metrics.loss, Double(metrics.correct), Double(metrics.samples)]
        try comm.allreduce(&v, what: "evaluation metrics")
        var m = EpochMetrics()
        m.loss = v[0]; m.correct = Int(v[1]); m.samples = Int(v[2])
        return m
    }

    // MARK: - Epochs

    /// Gathers every rank's (batches, statistics) and combines them in float64 in rank order,
    /// as SyncBatchNorm does, so every rank computes the same values; a rank without batches
    /// weighs nothing (none anywhere: the statistics stay as they are).
    public func averageRecalibratedStatistics(_ statistics: [Tensor], batches: Int) throws -> Int {
        let mine = [Double(batches)] + statistics.flatMap { $0.toArray().map(Double.init) }
        let all = try comm.allgather(mine.map(\.bitPattern), what: "recalibrated BatchNorm statistics").map { $0.map(Double.init(bitPattern:)) }
        let total = all.reduce(0) { $0 + $1[0] }
        guard total > 0 else { return 0 }
        var sum = [Double](repeating: 0, count: mine.count - 1)
        for r in all where r[0] > 0 { for j in sum.indices { sum[j] += r[0] * r[1 + j] } }
        var offset = 0
        for t in statistics {
            let values = sum[offset..<(offset + t.count)].map { Float($0 / total) }
            values.withUnsafeBufferPointer { t.device.write($0, to: t.buffer, offset: 0) }
            offset += t.count
        }
        return Int(total)
    }

    /// BatchNorm moving statistics from rank 0 (with per-rank statistics each rank's differ,
    /// and validation and checkpoints must use one set), then a check that weights and
    /// optimizer state are still the same on every rank.
    public func epochEnded(model: Model, optimizer: Optimizer) throws {
        let bns = model.layers.compactMap { $0 as? BatchNormalization }
        if !bns.isEmpty && !syncBatchNorm {
            try broadcast(bns.flatMap { [$0.movingMean, $0.movingVariance] }, what: "BatchNorm moving statistics")
        }
        let state = try trainingState(model, optimizer)
        let hashes = try comm.allgather([stateFingerprint(state)], what: "weights check (end of epoch)").map { $0[0] }
        let differing = hashes.indices.filter { hashes[$0] != hashes[0] }
        if !differing.isEmpty {
            // Not expected with one kind of device; ranks on devices whose update kernels round
            // differently (a GPU and a CPU) can drift by an ulp: rank 0's state wins.
            if isPrimary {
                FileHandle.standardError.write(Data("warning: weights or optimizer state of rank \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's after this epoch; rank 0's are copied to every rank\n".utf8))
            }
            try broadcast(state.map(\.tensor), what: "weights from rank 0")
        }
    }

    public func agreeOnStop(_ signal: Int32) throws -> Int32 {
        var v: [Double] = [signal == SIGINT ? 1 : 0, signal == SIGTERM ? 1 : 0, signal == SIGUSR1 ? 1 : 0]
        try comm.allreduce(&v, what: "stop requests (end of epoch)")
        return v[0] > 0 ? SIGINT : v[1] > 0 ? SIGTERM : v[2] > 0 ? SIGUSR1 : 0
    }

    public func checkpointWritten() throws { try comm.barrier(what: "rank 0's checkpoint") }

    // MARK: - Consistency

    /// Every weight, BatchNorm statistic and optimizer state tensor, in a fixed order.
    func trainingState(_ model: Model, _ optimizer: Optimizer) throws -> [NamedTensor] {
        model.layers.flatMap(\.weights) + (try optimizer.stateTensors(for: model.network.trainableParameters))
    }

    func stateFingerprint(_ state: [NamedTensor]) -> UInt64 {
        var h = Fingerprint()
        for t in state { h.add(t.name); h.add(t.tensor.toArray()) }
        return h.value
    }

    func broadcast(_ tensors: [Tensor], what: String) throws {
        var all = tensors.flatMap { $0.toArray() }
        try comm.broadcast(&all, what: what)
        var offset = 0
        all.withUnsafeBufferPointer { p in
            for t in tensors {
                t.device.write(UnsafeBufferPointer(rebasing: p[offset..<(offset + t.count)]), to: t.buffer, offset: 0)
                offset += t.count
            }
        }
    }

    /// Before training: the ranks must have the same flags, data and starting weights (and
    /// optimizer state, epoch and step when resuming). Each rank hashes its own; a difference
    /// is an error on every rank that names the rank and what differs.
    public func checkConsistency(arguments: [String], data: [(what: String, fingerprint: UInt64)], model: Model,
                                 optimizer: Optimizer, progress: [Int]) throws {
        var flags = Fingerprint()
        for a in arguments { flags.add(a) }
        var counters = Fingerprint()
        counters.add(progress.map { UInt64(bitPattern: Int64($0)) })
        counters.add(model.dropoutSteps.sorted { $0.key < $1.key }.map { UInt64($0.value) })
        let items: [(String, UInt64)] = [("command-line flags", flags.value)] + data
            + [("model weights and optimizer state", stateFingerprint(try trainingState(model, optimizer))),
               ("training position (epoch, step, dropout counters)", counters.value)]
        let all = try comm.allgather(items.map(\.1), what: "start-up check (flags, data, weights)")
        var problems: [String] = []
        for r in 1..<comm.size {
            let differ = items.indices.filter { all[r][$0] != all[0][$0] }.map { items[$0].0 }
            if !differ.isEmpty { problems.append("rank \(r)'s \(differ.joined(separator: ", ")) differ from rank 0's") }
        }
        guard problems.isEmpty else {
            // Rank 0 reports and ends the job; the others wait to be ended (or time out).
            guard isPrimary else {
                try comm.barrier(what: "rank 0's report of ranks that differ")
                throw comm.fail("rank 0 found ranks that differ but did not end the job")
            }
            throw comm.fail(problems.joined(separator: "; ")
                + ". Every rank must run the same command on the same data and weights (the same files at the same paths on every node)")
        }
    }
}

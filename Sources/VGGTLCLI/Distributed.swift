import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLNN
import VGGTLData
import VGGTLTrain
import VGGTLDistributed

/// This process's place in an `mpirun` job of several ranks. nil otherwise: vggtl then runs as
/// a single process and never loads MPI.
enum Job {
    static var launch: MPILaunch? { RunContext.current.launch }
    /// nonisolated(unsafe): set by `start` and read by the commands, all on the main thread,
    /// the only thread that may call MPI (funneled mode).
    nonisolated(unsafe) private(set) static var comm: Communicator?
    static var rank: Int { launch?.rank ?? 0 }
    static var isPrimary: Bool { rank == 0 }

    /// MPI_Init on first use (each command that splits its work calls it before any work).
    static func start(_ global: GlobalOptions) throws -> Communicator? {
        guard let launch else { return nil }
        if comm == nil {
            comm = try Communicator.start(launch, timeout: global.mpiTimeout, library: RunContext.current.knobs.settings.mpiLibrary)
            comm?.settingName = FlagWording.flag
        }
        return comm
    }

    /// Commands that split their work between ranks; others refuse to run under mpirun with
    /// several ranks rather than run N times over.
    static func supports(_ command: ParsableCommand) -> Bool {
        switch command {
        case is Devices, is Finetune, is TrainCommand, is TrainTop, is Evaluate, is Extract: return true
        case let b as Bench: return b.distributed
        default: return false
        }
    }

    /// "[rank 1] " before messages of ranks other than 0.
    static var prefix: String { launch.map { $0.rank == 0 ? "" : "[rank \($0.rank)] " } ?? "" }
}

extension GlobalOptions {
    /// The device of this process, with the knobs' options and through the run's seams: under
    /// mpirun, this rank's (see RankDevice), else as asked.
    func openDevice() throws -> Device {
        let context = RunContext.current
        let asked = device
        var choice = asked, threads = threads
        if let launch = Job.launch {
            _ = try Job.start(self)
            let mine = RankDevice.choose(asked, localRank: launch.localRank, localSize: launch.localSize, devices: DeviceChoice.openCLDevices(),
                                         cores: ProcessInfo.processInfo.activeProcessorCount, threads: threads, name: FlagWording.flag)
            choice = mine.choice; threads = mine.threads
        }
        let knobs = try context.knobs.validated()
        let device = try choice.open(threads: threads, cpu: knobs.cpu, opencl: knobs.opencl, warn: { stderr("warning: --device auto: \($0)") },
                                     describe: { ($0 as? VGGTLError).map(FlagWording.message) ?? String(describing: $0) })
        warnIfOpenCLOnCPU(device, asked: choice)
        return context.seams.wrapDevice(device)
    }
}

/// Options of data-parallel training (used only under mpirun).
struct DistributedOptions: ParsableArguments {
    @Flag(help: "Under mpirun: BatchNorm statistics over the global batch of all ranks (default: each rank's own share, as PyTorch DDP).")
    var syncBn = false
    @Option(help: "Under mpirun: gradient bucket size in MB; each bucket's allreduce starts as soon as backward has finished its layers.")
    var bucketMb: Double = 25
    @Option(help: "Under mpirun: how gradients travel.")
    var gradientCompression = GradientCompression.none

    func validate() throws {
        guard bucketMb > 0, bucketMb.isFinite else { throw VGGTLError.badFlag(flag: "--bucket-mb", value: "\(bucketMb)", expected: "a positive size in MB such as 25") }
    }
}

/// A training session's seam to MPI (`TrainingJob`): under mpirun each rank trains on its share
/// of every step and rank 0 alone writes the run folder; a single process resuming a
/// data-parallel checkpoint part-way through an epoch continues where the ranks stopped.
final class MPITrainingJob: TrainingJob {
    let global: GlobalOptions
    let options: DistributedOptions
    /// The split of the last `split`, and the batches it split (their fingerprints are checked).
    private var sharded: ShardedBatches?
    private var data: [(String, UInt64)] = []

    init(global: GlobalOptions, options: DistributedOptions) { self.global = global; self.options = options }

    var isDistributed: Bool { Job.comm != nil }
    var isPrimary: Bool { Job.isPrimary }

    /// Each rank's share of every step (one seeded shuffle per epoch) and a contiguous share of
    /// the validation set. A resumed epoch starts after the samples the checkpoint says are
    /// done, whatever the number of ranks that wrote it.
    func split(train: BatchProvider, validation: BatchProvider?, batch: Int, resuming info: CheckpointInfo?) throws -> TrainingSplit {
        let comm = try Job.start(global)
        sharded = nil
        if comm != nil {
            data = [("training data", (train as? ShardableBatches)?.dataFingerprint ?? 0)]
            if let v = validation as? ShardableBatches { data.append(("validation data", v.dataFingerprint)) }
        }
        let midEpoch = info?.batchesDone
        let saved = info?.dataParallel
        let savedGlobal = saved?.globalBatch ?? batch
        let ranks = comm?.size ?? 1
        guard comm != nil || (midEpoch != nil && savedGlobal != batch) else {
            if let info, savedGlobal != batch { noteBatchChange(info, ranks: 1, batch: batch, samplesDone: nil) }
            return .single(train: train, validation: validation, batch: batch)
        }
        guard let shardable = train as? ShardableBatches else {
            throw VGGTLError.invalidArgument("this training data cannot be split between ranks (internal error)")
        }
        let sharded = ShardedBatches(shardable, rank: comm?.rank ?? 0, ranks: ranks)
        if let info, let done = midEpoch {
            // A checkpoint's last batch may be partial: never more samples than the data holds.
            sharded.resume = (info.epoch, done, min(saved?.samplesDone ?? done * savedGlobal, shardable.sampleCount))
        }
        var val = validation
        if let comm, let v = validation {
            guard let s = v as? ShardableBatches else { throw VGGTLError.invalidArgument("this validation data cannot be split between ranks (internal error)") }
            val = EvaluationShard(s, rank: comm.rank, ranks: comm.size)
        }
        if let info, savedGlobal != sharded.globalBatch {
            noteBatchChange(info, ranks: ranks, batch: batch, samplesDone: sharded.resume?.samplesDone)
        }
        self.sharded = sharded
        return TrainingSplit(train: sharded, validation: val, record: { done in sharded.record(midEpoch: done != nil) })
    }

    /// Says that a resume runs at another global batch than its checkpoint's (and, mid-epoch,
    /// where the interrupted epoch continues).
    private func noteBatchChange(_ info: CheckpointInfo, ranks: Int, batch: Int, samplesDone: Int?) {
        let saved = info.dataParallel
        let was = saved.map { "\($0.ranks) rank\($0.ranks == 1 ? "" : "s") x batch \($0.batchPerRank) = \($0.globalBatch)" }
            ?? "batch \(batch) (assumed: the checkpoint does not say)"
        let position = samplesDone.map { ", and the interrupted epoch continues after its \($0) samples done" } ?? ""
        print("note: the checkpoint was written with a global batch of \(was); this run's is \(ranks) rank\(ranks == 1 ? "" : "s") x batch \(batch) = \(ranks * batch): "
              + "steps per epoch and the noise of each step change (the learning rate is not rescaled)\(position)")
    }

    /// Joins a trainer to the other ranks: the coordinator, rank 0 alone printing progress, and
    /// the start-up check that every rank has the same flags, data and weights.
    func join(_ trainer: Trainer, split: TrainingSplit, info: CheckpointInfo) throws {
        guard let comm = Job.comm, let sharded else { return }
        let compression = options.gradientCompression
        let dp = DataParallel(comm: comm, train: sharded, syncBatchNorm: options.syncBn, bucketMegabytes: options.bucketMb,
                              compression: compression)
        trainer.coordinator = dp
        trainer.verbose = dp.isPrimary
        try dp.checkConsistency(arguments: Array(CommandLine.arguments.dropFirst()), data: data, model: trainer.model, optimizer: trainer.optimizer,
                                progress: [info.epoch, info.batchesDone ?? -1, trainer.optimizer.iterations])
        let devices = try comm.allgatherStrings(trainer.model.device.name, what: "device names")
        let trainable = trainer.model.network.trainableParameters.reduce(0) { $0 + $1.value.count }
        let bn = trainer.model.layers.contains { $0 is BatchNormalization }
        print("data parallel: \(comm.size) ranks x batch \(sharded.batchPerRank) = global batch \(sharded.globalBatch); "
              + "\(sharded.batchCount) steps per epoch; each rank trains on its share of one seeded shuffle per epoch")
        print("gradients: \(String(format: "%.2f", Double(trainable) / 1e6)) M trainable parameters, "
              + "\(String(format: "%.1f", Double(trainable * compression.bytesPerValue) / 1e6)) MB\(compression == .fp16 ? " as fp16 (--gradient-compression)" : "") "
              + "summed per step (MPI_Iallreduce in \(String(format: "%g", options.bucketMb)) MB buckets during backward)"
              + (bn ? "; BatchNorm statistics \(options.syncBn ? "over the global batch (--sync-bn)" : "per rank (--sync-bn shares them)")" : ""))
        for (r, d) in devices.enumerated() { print("rank \(r) (\(comm.peers[r])): \(d)") }
    }
}

/// Under mpirun, this rank's contiguous share of an evaluation or extraction set.
func evaluationShare(_ loader: BatchLoader) -> BatchProvider {
    Job.comm.map { EvaluationShard(loader, rank: $0.rank, ranks: $0.size) } ?? loader
}

/// Every rank's integers on rank 0, in rank order (nil on the others; as is without mpirun).
func gatherOnPrimary(_ values: [Int], what: String) throws -> [Int]? {
    guard let comm = Job.comm else { return values }
    let bytes = values.map { Int64($0) }.withUnsafeBytes { Array($0) }
    return try comm.gather(bytes, what: what).map { parts in
        parts.flatMap { part in part.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)).map { Int($0) } } }
    }
}

/// Every rank's floats on rank 0, in rank order (nil on the others; as is without mpirun).
func gatherOnPrimary(_ values: [Float], what: String) throws -> [Float]? {
    guard let comm = Job.comm else { return values }
    let bytes = values.withUnsafeBytes { Array($0) }
    return try comm.gather(bytes, what: what).map { parts in
        parts.flatMap { part in part.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
    }
}

/// Sums over the ranks (as is without mpirun).
func sumOverRanks(_ values: [Double], what: String) throws -> [Double] {
    guard let comm = Job.comm else { return values }
    var v = values
    try comm.allreduce(&v, what: what)
    return v
}

/// Rank 0's value on every rank (as is without mpirun): decisions that depend on rank 0's files.
func primaryDecides(_ value: Bool, what: String) throws -> Bool {
    guard let comm = Job.comm else { return value }
    return try comm.allgather([value ? 1 : 0], what: what)[0][0] != 0
}

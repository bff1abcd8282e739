import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLModels
import VGGTLDistributed

/// One case of `vggtl bench --distributed`: a training case run as a data-parallel step on every
/// rank (each at the case's batch, the global batch ranks times larger), with the gradient
/// allreduce overlapped with backward as in training.
public struct DistributedBenchResult: Codable, Sendable {
    public var name: String
    public var ranks: Int
    public var batchPerRank: Int
    public var device: String
    /// Global images per second: ranks x batch / median step time (the slowest rank's).
    public var imagesPerSecond: Double
    public var stepSeconds: [Double]
    /// Median seconds per step spent waiting for the gradient allreduce after backward (what
    /// overlap did not hide); 0 for one rank.
    public var exposedAllreduceSeconds: Double
    /// Median seconds of the same bucketed allreduce with no compute around it; 0 for one rank.
    public var allreduceSeconds: Double
    public var gradientMegabytes: Double
    /// How the gradients traveled (none: float32, fp16: half the bytes).
    public var compression: String?
}

public enum DistributedBench {
    /// Times `steps` steps (after one warm-up) of a training case; `comm` nil: one process.
    public static func run(_ w: Workload, comm: Communicator?, device: Device, steps: Int, bucketMegabytes: Double,
                           compression: GradientCompression = .none) throws -> DistributedBenchResult {
        guard w.kind == .train, !w.fromJPEGs else {
            throw VGGTLError.invalidSetting(.benchmarkCase, value: w.name, expected: "a training case with data in memory (full150, full224, part150, bn32) for distributed training")
        }
        let ranks = comm?.size ?? 1
        let config = ModelConfig(trunk: w.trunk, inputShape: [w.size, w.size, 3], includeTop: w.includeTop, classes: w.classes)
        let model = try Model(config, on: device, seed: 1)
        model.apply(w.unfreeze)
        // Each rank its own images (the seed), as each trains on its share.
        let x = try Tensor(uniformValues(w.batch * w.size * w.size * 3, seed: 5 + UInt64(comm?.rank ?? 0)), shape: [w.batch, w.size, w.size, 3], on: device)
        let labels = try Tensor((0..<w.batch).map { Float($0 % w.classes) }, shape: config.loss == .softmaxCrossEntropy ? [w.batch] : [w.batch, 1], on: device)
        let optimizer: Optimizer = w.adam ? Adam(learningRate: 1e-4) : SGD(learningRate: 1e-4, momentum: 0.9)
        let loss = Loss(config.loss)
        let buckets = comm.map { GradientBuckets(comm: $0, megabytes: bucketMegabytes, compression: compression) }
        let trainable = model.network.trainableParameters
        var waits: [Double] = []
        let times = try stepSeconds(warmup: 1, steps: steps) {
            buckets?.begin(trainable)
            let (l, g) = try loss.compute(logits: model.network.forward(x, .training), labels: labels, gradientScale: 1 / Float(ranks * w.batch))
            if let comm {
                var totals = [Double(l) * Double(w.batch), 0, Double(w.batch), 0, 0, 0, 0]
                try comm.allreduce(&totals, what: "step totals")
            }
            try model.network.backward(g, gradientsReady: buckets.map { b in { b.ready($0) } })
            try buckets?.finish()
            if let b = buckets { waits.append(b.lastWait) }
            try optimizer.update(trainable)
            device.synchronize()
        }
        var slowest = times
        if let comm { try comm.allreduce(&slowest, .max, what: "step times") }
        var pure: [Double] = []
        if let comm, let buckets {
            // The same buckets reduced back to back, nothing else running.
            for _ in 0..<5 {
                try comm.barrier(what: "allreduce timing")
                let t0 = Date()
                buckets.begin(trainable)
                try buckets.finish()
                var t = [Date().timeIntervalSince(t0)]
                try comm.allreduce(&t, .max, what: "allreduce timing")
                pure.append(t[0])
            }
        }
        let bytes = trainable.reduce(0) { $0 + $1.value.count } * compression.bytesPerValue
        return DistributedBenchResult(name: w.name, ranks: ranks, batchPerRank: w.batch, device: device.name,
                                      imagesPerSecond: Double(ranks * w.batch) / median(slowest), stepSeconds: slowest,
                                      exposedAllreduceSeconds: waits.isEmpty ? 0 : median(Array(waits.dropFirst())),
                                      allreduceSeconds: pure.isEmpty ? 0 : median(pure), gradientMegabytes: Double(bytes) / 1e6,
                                      compression: compression.rawValue)
    }
}

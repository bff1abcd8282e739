import Foundation
import VGGTLTensors
import VGGTLNN

/// `--sync-bn`: BatchNorm statistics over the batches of all ranks. Forward gathers every rank's
/// (n, mean, variance) and combines them in float64 as Chan et al. do (global mean, then
/// sum of n * (variance + (mean - global mean)^2)): E[x^2] - mean^2 would lose the variance of
/// channels whose mean is large against their spread. Backward sums dgamma and dbeta for the
/// input gradient (the parameters' gradients themselves are summed with the others). A rank
/// running a stand-in batch (its share of a step is empty) contributes nothing. One per step,
/// in the step's context.
final class SyncBatchNorm: BatchStatisticsSync {
    let comm: Communicator
    /// This step's batch is a stand-in: weight 0.
    let standIn: Bool

    init(comm: Communicator, standIn: Bool) { self.comm = comm; self.standIn = standIn }

    func reduceStatistics(mean: Tensor, variance: Tensor, rows: Int, layer: String) throws -> Int {
        let m = mean.toArray(), v = variance.toArray(), c = m.count
        let mine = [standIn ? 0.0 : Double(rows)] + m.map(Double.init) + v.map(Double.init)
        // Every rank combines the same gathered values in the same order: the same result.
        let all = try comm.allgather(mine.map(\.bitPattern), what: "\(layer) batch statistics (\(comm.settingName(.syncBatchNorm)))").map { $0.map(Double.init(bitPattern:)) }
        let total = all.reduce(0) { $0 + $1[0] }
        var mu = [Double](repeating: 0, count: c), m2 = mu
        for r in all where r[0] > 0 { for j in 0..<c { mu[j] += r[0] * r[1 + j] } }
        for j in 0..<c { mu[j] /= max(total, 1) }
        for r in all where r[0] > 0 {
            for j in 0..<c { let d = r[1 + j] - mu[j]; m2[j] += r[0] * (r[1 + c + j] + d * d) }
        }
        let mean2 = mu.map { Float($0) }, variance2 = m2.map { Float($0 / max(total, 1)) }
        mean2.withUnsafeBufferPointer { mean.device.write($0, to: mean.buffer, offset: 0) }
        variance2.withUnsafeBufferPointer { variance.device.write($0, to: variance.buffer, offset: 0) }
        return Int(total)
    }

    func reduceGradientSums(dgamma: Tensor, dbeta: Tensor, layer: String) throws -> (dgamma: [Float], dbeta: [Float]) {
        var sums = dgamma.toArray() + dbeta.toArray()
        let c = dgamma.count
        try comm.allreduce(&sums, what: "\(layer) gradient sums (\(comm.settingName(.syncBatchNorm)))")
        return (Array(sums[0..<c]), Array(sums[c...]))
    }
}

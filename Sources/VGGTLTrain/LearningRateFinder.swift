import Foundation
import VGGTLTensors
import VGGTLData

/// The learning-rate range test as fastai's `lr_find` runs it: one optimiser step per batch at
/// a rate that grows exponentially from `startRate` to `endRate`, the loss smoothed by a
/// bias-corrected moving average, the sweep stopped once the smoothed loss passes
/// `divergence` times its best (or is not finite).
public struct LearningRateSweep: Sendable {
    public var startRate: Double
    public var endRate: Double
    public var steps: Int
    /// fastai's stop_div: the sweep has diverged past 4x the best smoothed loss.
    public var divergence = 4.0
    /// fastai's smoothing of the recorded loss.
    public var beta = 0.98

    public init(startRate: Double = 1e-7, endRate: Double = 10, steps: Int = 100) {
        self.startRate = startRate; self.endRate = endRate; self.steps = steps
    }

    /// The rate of step `i` (0-based): start at 0, end at `steps - 1`.
    public func rate(at i: Int) -> Double {
        guard steps > 1 else { return startRate }
        return startRate * pow(endRate / startRate, Double(i) / Double(steps - 1))
    }
}

/// One step of a sweep (step 1-based).
public struct LearningRatePoint: Sendable, Equatable {
    public var step: Int
    public var rate: Double
    public var loss: Double
    public var smoothedLoss: Double

    public init(step: Int, rate: Double, loss: Double, smoothedLoss: Double) {
        self.step = step; self.rate = rate; self.loss = loss; self.smoothedLoss = smoothedLoss
    }
}

/// What a sweep found: its points, why it stopped, and the two rates it suggests.
public struct LearningRateFinding: Sendable {
    public enum Stop: Sendable, Equatable {
        /// Every step ran.
        case completed
        /// The smoothed loss passed `divergence` times its best at this rate.
        case diverged(rate: Double)
        /// The loss was NaN or infinite at this rate (that step changed nothing).
        case nonFinite(rate: Double)
    }

    public var sweep: LearningRateSweep
    public var points: [LearningRatePoint]
    public var stop: Stop
    /// The rate where the smoothed loss falls fastest against log(rate) (fastai's steep).
    public var steepest: Double?
    /// The rate of the smallest smoothed loss divided by 10 (fastai's minimum): a rate
    /// safely below the one where the loss starts to climb.
    public var minimumOverTen: Double?

    public init(sweep: LearningRateSweep, points: [LearningRatePoint], stop: Stop) {
        self.sweep = sweep; self.points = points; self.stop = stop
        (steepest, minimumOverTen) = Self.suggestions(points, sweep: sweep)
    }

    /// fastai's suggestions over the points without the first tenth of the sweep (the loss
    /// barely moves there) and the last five (the explosion); all points when that leaves too
    /// few. A rate outside the sweep has nothing behind it, so they are kept within it.
    static func suggestions(_ points: [LearningRatePoint], sweep: LearningRateSweep) -> (Double?, Double?) {
        var kept = Array(points.dropFirst(sweep.steps / 10).dropLast(5))
        if kept.count < 3 { kept = points }
        guard kept.count >= 2 else { return (nil, nil) }
        let clamp = { (r: Double) in min(max(r, sweep.startRate), sweep.endRate) }
        var steepest = 0, slope = Double.infinity
        for i in 0..<(kept.count - 1) {
            let s = (kept[i + 1].smoothedLoss - kept[i].smoothedLoss) / (log(kept[i + 1].rate) - log(kept[i].rate))
            if s < slope { slope = s; steepest = i }
        }
        let lowest = kept.indices.min { kept[$0].smoothedLoss < kept[$1].smoothedLoss }!
        return (clamp(kept[steepest].rate), clamp(kept[lowest].rate / 10))
    }

    /// step,lr,loss,smoothed_loss: one row per step run.
    public var csv: String {
        func g(_ v: Double) -> String { String(format: "%.8g", v) }
        return "step,lr,loss,smoothed_loss\n" + points.map { "\($0.step),\(g($0.rate)),\(g($0.loss)),\(g($0.smoothedLoss))\n" }.joined()
    }
}

extension TrainingSession {
    /// The sweep on the model a fresh run of this session would start from (its weights, top
    /// model and `unfreeze`), with the session's optimizer at the sweep's rates. `train` is
    /// cycled when it has fewer batches than steps. Nothing is written: the caller keeps the
    /// finding, and the trained-on model is dropped.
    public func findLearningRate(train: BatchProvider, sweep: LearningRateSweep, progress: Bool = true) throws -> LearningRateFinding {
        let c = configuration
        let model = try freshModel(unfreeze: c.unfreeze)
        report(.device(device.name))
        report(.model(c.model, unfreeze: c.unfreeze, optimizer: c.optimizer))
        let trainer = makeTrainer(model, optimizer: c.optimizer.make(), schedule: .constant, scheduleStart: 0)
        var epoch = 0, batches = train.batches(epoch: 0), sinceImages = 0
        // The next batch with images, into the next epoch when one ends.
        func nextBatch() throws -> Batch {
            while true {
                guard let b = batches.next() else {
                    // A whole pass without an image: nothing can ever be trained on.
                    guard sinceImages > 0 else {
                        throw VGGTLError.invalidArgument("the training data has no readable image: the learning-rate sweep has nothing to train on")
                    }
                    (epoch, sinceImages) = (epoch + 1, 0)
                    batches = train.batches(epoch: epoch)
                    continue
                }
                try trainer.report(b.failures)
                if b.count > 0 { sinceImages += b.count; return b }
            }
        }
        let bar = progress ? ProgressBar(total: sweep.steps, label: "lr-find") : nil
        var points: [LearningRatePoint] = [], average = 0.0, best = Double.infinity, images = 0
        var stop = LearningRateFinding.Stop.completed
        for i in 0..<sweep.steps {
            let rate = sweep.rate(at: i)
            trainer.optimizer.learningRate = Float(rate)
            let batch = try nextBatch()
            let loss: Float
            do {
                loss = try fittingBatch(batch.count) { try trainer.step(batch) }.loss
            } catch VGGTLError.nonFiniteLoss {
                stop = .nonFinite(rate: rate)
                break
            }
            images += batch.count
            average = sweep.beta * average + (1 - sweep.beta) * Double(loss)
            let smoothed = average / (1 - pow(sweep.beta, Double(i + 1)))
            points.append(LearningRatePoint(step: i + 1, rate: rate, loss: Double(loss), smoothedLoss: smoothed))
            best = min(best, smoothed)
            bar?.update(i + 1, images: images, metrics: [("loss", smoothed)])
            if !smoothed.isFinite || smoothed > sweep.divergence * best {
                stop = .diverged(rate: rate)
                break
            }
        }
        bar?.update(points.count, images: images, metrics: [("loss", points.last?.smoothedLoss ?? .nan)], final: true)
        return LearningRateFinding(sweep: sweep, points: points, stop: stop)
    }
}

import Foundation
import VGGTLTensors

/// One batch: preprocessed images (NHWC) with their labels. Images that could not be read are
/// left out of `x`, `labels` and `indices` and listed in `failures`.
public struct Batch {
    /// count * height * width * 3 floats, NHWC, preprocessed.
    public var x: [Float]
    /// The class index of each image, as a float; for a multi-label source, each image's multi-hot row.
    public var labels: [Float]
    /// Source indices of the images in `x`, in order.
    public var indices: [Int]
    public var count: Int
    /// Images that could not be read (skipped, not in `x`): the source's name and the reason.
    public var failures: [(name: String, reason: String)]

    public init(x: [Float], labels: [Float], indices: [Int], count: Int, failures: [(name: String, reason: String)] = []) {
        self.x = x
        self.labels = labels
        self.indices = indices
        self.count = count
        self.failures = failures
    }
}

/// Decodes, resizes, augments and preprocesses on background threads, keeping up to
/// `prefetch` batches ready or in progress beyond the one the caller holds.
///
/// Every index appears exactly once per epoch, the last partial batch is kept, batches come
/// out in order. Shuffling is a seeded permutation of the indices (seed and epoch: the same
/// seed gives the same order on every run). The augmentation of an image depends only on
/// (seed, epoch, index), never on which thread ran it or when.
public final class BatchLoader {
    public let source: ImageSource
    public let indices: [Int]
    public let batchSize: Int
    public let input: InputSpec
    public let augmentation: Augmentation?
    public let shuffle: Bool
    public let seed: UInt64
    public let workers: Int
    public let prefetch: Int
    /// `--sampler balanced`: each epoch draws the classes equally often (`balancedOrder`)
    /// instead of visiting every image once.
    public let balanced: Bool

    public init(source: ImageSource, indices: [Int]? = nil, batchSize: Int, input: InputSpec,
                augmentation: Augmentation? = nil, shuffle: Bool, seed: UInt64, workers: Int? = nil,
                prefetch: Int = 4, balanced: Bool = false) {
        precondition(batchSize >= 1, "batch size must be at least 1, got \(batchSize)")
        precondition(input.height >= 1 && input.width >= 1, "input size \(input.width)x\(input.height) must be positive")
        let indices = indices ?? Array(0..<source.count)
        precondition(indices.allSatisfy { $0 >= 0 && $0 < source.count }, "BatchLoader: indices must be in 0..<\(source.count)")
        self.source = source
        self.indices = indices
        self.batchSize = batchSize
        self.input = input
        self.augmentation = (augmentation?.isIdentity ?? true) ? nil : augmentation
        self.shuffle = shuffle
        self.seed = seed
        self.workers = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        self.prefetch = max(1, prefetch)
        self.balanced = balanced
    }

    public var batchCount: Int { (indices.count + batchSize - 1) / batchSize }

    /// The order in which `indices` are visited in an epoch.
    public func order(epoch: Int) -> [Int] {
        if balanced {
            return balancedOrder(labels: indices.map(source.label), seed: seed, epoch: epoch).map { indices[$0] }
        }
        var order = indices
        if shuffle {
            var rng = SeededGenerator(seed: mixSeed(seed, UInt64(bitPattern: Int64(epoch)), 0x5_4F46_464C_45))
            seededShuffle(&order, rng: &rng)
        }
        return order
    }

    /// Batches of one epoch, produced in the background. Iterate on one thread; dropping the
    /// iterator early stops the workers.
    public func batches(epoch: Int) -> AnyIterator<Batch> {
        let run = EpochRun(loader: self, order: order(epoch: epoch), epoch: epoch)
        run.start()
        let handle = EpochHandle(run)
        return AnyIterator { handle.next() }
    }

    /// One image as the loader prepares it: decoded, resized, augmented for (epoch, index),
    /// preprocessed into `out` (height*width*3 floats).
    func prepare(index: Int, epoch: Int, into out: UnsafeMutablePointer<Float>) throws {
        var image = try source.image(index)
        if image.width != input.width || image.height != input.height {
            image = resize(image, height: input.height, width: input.width)
        }
        if let augmentation {
            var rng = SeededGenerator(seed: mixSeed(seed, UInt64(bitPattern: Int64(epoch)), UInt64(index)))
            image = augmentation.apply(image, rng: &rng)
        }
        input.preprocessing.apply(image, into: out)
    }
}

/// Stops the run when the caller lets go of the iterator.
private final class EpochHandle {
    let run: EpochRun
    init(_ run: EpochRun) { self.run = run }
    func next() -> Batch? { run.next() }
    deinit { run.cancel() }
}

/// The shared state of one epoch. Workers take images one at a time, in epoch order, from
/// batches inside the prefetch window, write them straight into their batch's buffer, and
/// the worker finishing a batch's last image assembles it.
private final class EpochRun: @unchecked Sendable {
    let loader: BatchLoader
    let order: [Int]
    let epoch: Int
    let stride: Int
    let condition = NSCondition()
    // Guarded by `condition`:
    var nextPosition = 0
    var delivered = 0
    var building: [Int: Build] = [:]
    var ready: [Int: Batch] = [:]
    var cancelled = false

    final class Build {
        let start: Int, count: Int
        let buffer: UnsafeMutablePointer<Float>
        var remaining: Int
        var failed: [Int: String] = [:]  // slot -> reason
        init(start: Int, count: Int, stride: Int) {
            self.start = start
            self.count = count
            self.remaining = count
            buffer = .allocate(capacity: max(count * stride, 1))
        }
        deinit { buffer.deallocate() }
    }

    init(loader: BatchLoader, order: [Int], epoch: Int) {
        self.loader = loader
        self.order = order
        self.epoch = epoch
        self.stride = loader.input.floatsPerImage
    }

    func start() {
        let threads = min(loader.workers, max(order.count, 1))
        for k in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "vggtl-loader-\(k)"
            thread.start()
        }
    }

    func cancel() {
        condition.lock()
        cancelled = true
        building.removeAll()
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    func next() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        guard delivered < loader.batchCount else { return nil }
        while ready[delivered] == nil { condition.wait() }
        let batch = ready.removeValue(forKey: delivered)!
        delivered += 1
        condition.broadcast()  // the window moved: workers may start another batch
        return batch
    }

    private func work() {
        let batchSize = loader.batchSize
        condition.lock()
        while !cancelled && nextPosition < order.count {
            let position = nextPosition
            let b = position / batchSize
            if b >= delivered + loader.prefetch {
                condition.wait()
                continue
            }
            nextPosition += 1
            let build: Build
            if let existing = building[b] {
                build = existing
            } else {
                let start = b * batchSize
                build = Build(start: start, count: min(batchSize, order.count - start), stride: stride)
                building[b] = build
            }
            condition.unlock()

            let slot = position - build.start
            let index = order[position]
            var failure: String?
            do {
                try loader.prepare(index: index, epoch: epoch, into: build.buffer + slot * stride)
            } catch {
                failure = reason(error, name: loader.source.name(index))
            }

            condition.lock()
            if let failure { build.failed[slot] = failure }
            build.remaining -= 1
            if build.remaining == 0 && !cancelled {
                building[b] = nil
                condition.unlock()
                let batch = assemble(build)
                condition.lock()
                if !cancelled { ready[b] = batch }
                condition.broadcast()
            }
        }
        condition.unlock()
    }

    private func assemble(_ build: Build) -> Batch {
        var x: [Float] = []
        var labels: [Float] = []
        var indices: [Int] = []
        var failures: [(name: String, reason: String)] = []
        let ok = build.count - build.failed.count
        x.reserveCapacity(ok * stride)
        labels.reserveCapacity(ok)
        indices.reserveCapacity(ok)
        if build.failed.isEmpty {
            x.append(contentsOf: UnsafeBufferPointer(start: build.buffer, count: build.count * stride))
        }
        for slot in 0..<build.count {
            let index = order[build.start + slot]
            if let why = build.failed[slot] {
                failures.append((loader.source.name(index), why))
                continue
            }
            if !build.failed.isEmpty {
                x.append(contentsOf: UnsafeBufferPointer(start: build.buffer + slot * stride, count: stride))
            }
            labels.append(contentsOf: loader.source.targets(index))
            indices.append(index)
        }
        return Batch(x: x, labels: labels, indices: indices, count: indices.count, failures: failures)
    }
}

/// An error's message without the leading "name: " that our errors carry.
private func reason(_ error: Error, name: String) -> String {
    let text = String(describing: error)
    return text.hasPrefix(name + ": ") ? String(text.dropFirst(name.count + 2)) : text
}

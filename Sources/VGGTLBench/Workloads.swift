import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLModels

/// The whole-job benchmark cases, defined exactly as the PyTorch reference measures them
/// (random weights and data, float32, median over repeated steps).
public struct Workload: Sendable {
    /// load: the data pipeline alone (JPEG folder -> batches), no model: its img/s against a
    /// training case's says how much of the CPU loading takes from compute.
    public enum Kind: Sendable { case extract, train, load }
    public let name: String
    public let kind: Kind
    public let size: Int
    public let batch: Int
    public let trunk: ModelConfig.Trunk
    public let includeTop: Bool
    public let unfreeze: UnfreezeSpec
    public let adam: Bool
    public let classes: Int
    /// PyTorch 2.15 CPU img/s on the 2-core development machine (from the performance issue).
    public let pytorchCPU: Double?
    /// Batches come from a folder of JPEGs through the BatchLoader (decode, resize, the Keras
    /// tutorial's augmentation, preprocessing on background threads) instead of one tensor in memory.
    public var fromJPEGs = false
    /// The head's pooling (the tutorials' Flatten for VGG16, global average pooling for the others).
    public var pooling: ModelConfig.Pooling = .flatten

    public static let all: [Workload] = [
        Workload(name: "extract224", kind: .extract, size: 224, batch: 32, trunk: .vgg16, includeTop: false, unfreeze: .none, adam: false, classes: 2, pytorchCPU: 5.8),
        Workload(name: "extract150", kind: .extract, size: 150, batch: 32, trunk: .vgg16, includeTop: false, unfreeze: .none, adam: false, classes: 2, pytorchCPU: 13.5),
        Workload(name: "full150", kind: .train, size: 150, batch: 16, trunk: .vgg16, includeTop: false, unfreeze: .all, adam: false, classes: 2, pytorchCPU: 4.95),
        Workload(name: "full224", kind: .train, size: 224, batch: 16, trunk: .vgg16, includeTop: false, unfreeze: .all, adam: false, classes: 2, pytorchCPU: 2.09),
        Workload(name: "part150", kind: .train, size: 150, batch: 16, trunk: .vgg16, includeTop: false, unfreeze: .fromBlock(5), adam: false, classes: 2, pytorchCPU: 12.6),
        Workload(name: "full150jpeg", kind: .train, size: 150, batch: 16, trunk: .vgg16, includeTop: false, unfreeze: .all, adam: false, classes: 2, pytorchCPU: nil, fromJPEGs: true),
        Workload(name: "load150jpeg", kind: .load, size: 150, batch: 16, trunk: .vgg16, includeTop: false, unfreeze: .none, adam: false, classes: 2, pytorchCPU: nil, fromJPEGs: true),
        Workload(name: "bn32", kind: .train, size: 32, batch: 64, trunk: .vgg16BN, includeTop: true, unfreeze: .all, adam: true, classes: 10, pytorchCPU: 76),
        // Issue 11: Keras' ResNet50 (v1) and InceptionV3, batch 32; fine-tuning trains conv5 and
        // a GAP-Dense256-Dropout-Dense head with the frozen stages' BatchNorm in inference mode.
        Workload(name: "resnet50-extract224", kind: .extract, size: 224, batch: 32, trunk: .resnet50, includeTop: false, unfreeze: .none,
                 adam: false, classes: 2, pytorchCPU: nil, pooling: .gap),
        Workload(name: "resnet50-finetune224", kind: .train, size: 224, batch: 32, trunk: .resnet50, includeTop: false,
                 unfreeze: .fromStage("conv5"), adam: false, classes: 2, pytorchCPU: nil, pooling: .gap),
        Workload(name: "inceptionv3-extract299", kind: .extract, size: 299, batch: 32, trunk: .inceptionV3, includeTop: false, unfreeze: .none,
                 adam: false, classes: 2, pytorchCPU: nil, pooling: .gap),
    ]

    /// The same case at another batch.
    public func withBatch(_ b: Int) -> Workload {
        var w = Workload(name: name, kind: kind, size: size, batch: b, trunk: trunk, includeTop: includeTop, unfreeze: unfreeze,
                         adam: adam, classes: classes, pytorchCPU: nil)
        w.fromJPEGs = fromJPEGs
        w.pooling = pooling
        return w
    }

    /// FLOPs per image as the reference counts them, given the trunk's multiply-accumulates per
    /// image (counted over its convolutions: VGG16 15.35 G at 224x224, ResNet50 3.86 G, InceptionV3
    /// 5.71 G at 299x299): forward = 2 x MAC; training = 3 x forward when every layer trains.
    public func gflopPerImage(trunkGMAC: Double) -> Double? {
        switch kind {
        case .extract: return 2 * trunkGMAC
        case .train: return unfreeze == .all ? 3 * 2 * trunkGMAC : nil
        case .load: return nil
        }
    }
}

public struct WorkloadResult: Codable, Sendable {
    public var name: String
    /// Device bytes of the network's planned buffers (activations, gradients, scratch), and of
    /// those the backward uses, after the timed steps.
    public var networkBytes: Int?
    public var gradientBytes: Int?
    public var device: String
    public var imagesPerSecond: Double
    public var gflops: Double?
    public var percentOfPeak: Double?
    public var pytorchImagesPerSecond: Double?
    public var ratioToPyTorch: Double?
    public var stepSeconds: [Double]
}

public enum WorkloadBench {
    /// Runs `warmup` + `steps` steps of a case and reports the median.
    public static func run(_ w: Workload, on device: Device, steps: Int, warmup: Int = 1, gemmPeak: Double?) throws -> WorkloadResult {
        let jpegs = try w.fromJPEGs ? JPEGFolder(batch: w.batch, size: w.size, seed: 1) : nil
        defer { jpegs?.remove() }
        let times: [Double]
        var memory: (Int, Int)?
        var gmac = 0.0
        if w.kind == .load, let jpegs {
            // Batches as fast as the loader makes them (all cores, nothing else running); more of
            // them than a training case's steps, as one takes a fraction of a second.
            times = stepSeconds(warmup: warmup, steps: 4 * steps) { _ = jpegs.next() }
        } else {
            let (x, labels, step, model) = try modelStep(w, on: device)
            defer { memory = (model.network.memoryBytes, model.network.lastPlanBytes?.gradients ?? 0) }
            gmac = Double(try model.network.multiplyAccumulates([1, w.size, w.size, 3], upTo: model.trunkOutput)) / 1e9
            times = try stepSeconds(warmup: warmup, steps: steps) {
                if let jpegs {
                    // Waiting for the loader is part of the step: that is what the case measures.
                    let b = jpegs.next()
                    b.x.withUnsafeBufferPointer { device.write($0, to: x.buffer, offset: 0) }
                    b.labels.withUnsafeBufferPointer { device.write($0, to: labels.buffer, offset: 0) }
                }
                try step()
            }
        }
        let ips = Double(w.batch) / median(times)
        let gflops = w.gflopPerImage(trunkGMAC: gmac).map { $0 * ips }
        return WorkloadResult(name: w.name, networkBytes: memory?.0, gradientBytes: memory?.1, device: device.name, imagesPerSecond: ips, gflops: gflops,
                              percentOfPeak: gemmPeak.flatMap { p in gflops.map { 100 * $0 / p } },
                              pytorchImagesPerSecond: device.kind == .cpu ? w.pytorchCPU : nil,
                              ratioToPyTorch: device.kind == .cpu ? w.pytorchCPU.map { ips / $0 } : nil, stepSeconds: times)
    }

    /// The case's model with its input and label tensors, and one step: the trunk's forward
    /// (extract) or a training step (train).
    static func modelStep(_ w: Workload, on device: Device) throws -> (x: Tensor, labels: Tensor, step: () throws -> Void, model: Model) {
        var config = ModelConfig(trunk: w.trunk, inputShape: [w.size, w.size, 3], includeTop: w.includeTop, headPooling: w.pooling, classes: w.classes)
        if w.kind == .extract { config.headHidden = 0 }
        // As `finetune` runs by default: BatchNorm normalises with its moving statistics.
        if w.trunk != .vgg16BN { config.frozenBatchNormStatistics = true }
        let model = try Model(config, on: device, seed: 1)
        model.apply(w.unfreeze)
        let x = try Tensor(uniformValues(w.batch * w.size * w.size * 3, seed: 5), shape: [w.batch, w.size, w.size, 3], on: device)
        let labels = try Tensor((0..<w.batch).map { Float($0 % w.classes) }, shape: config.loss == .softmaxCrossEntropy ? [w.batch] : [w.batch, 1], on: device)
        if w.kind == .extract {
            // Extraction runs the trunk alone; the head is not part of the reference's number.
            return (x, labels, { _ = try model.network.forward(x, .inference, upTo: model.trunkOutput).toArray().first }, model)
        }
        let optimizer: Optimizer = w.adam ? Adam(learningRate: 1e-4) : SGD(learningRate: 1e-4, momentum: 0.9)
        let loss = Loss(config.loss)
        return (x, labels, {
            let (_, g) = try loss.compute(logits: model.network.forward(x, .training), labels: labels)
            try model.network.backward(g)
            try optimizer.update(model.network.trainableParameters)
            device.synchronize()
        }, model)
    }

    /// Median SGEMM GFLOP/s at n x n x n on a device.
    public static func gemmGFLOPS(on device: Device, n: Int = 2048, repeats: Int = 5) throws -> Double {
        let a = try Tensor(uniformValues(n * n, seed: 1), shape: [n, n], on: device)
        let b = try Tensor(uniformValues(n * n, seed: 2), shape: [n, n], on: device)
        let c = try Tensor(zeros: [n, n], on: device)
        var rates: [Double] = []
        for i in 0...repeats {
            let t0 = Date()
            device.gemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.buffer, aOffset: 0, lda: n,
                        b: b.buffer, bOffset: 0, ldb: n, beta: 0, c: c.buffer, cOffset: 0, ldc: n)
            device.synchronize()
            if i > 0 { rates.append(2 * Double(n * n * n) / Date().timeIntervalSince(t0) / 1e9) }
        }
        return median(rates)
    }
}

/// A temporary folder of photo-sized JPEGs (500x375, two classes, as in the cats-vs-dogs
/// tutorials) and a BatchLoader over it with the tutorial's augmentation, cycling epochs.
final class JPEGFolder {
    let root: URL
    let loader: BatchLoader
    private var epoch = 0
    private var iterator: AnyIterator<Batch>

    init(batch: Int, size: Int, seed: UInt64) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-bench-jpegs-\(getpid())")
        var g = SeededGenerator(seed: seed)
        for (c, name) in ["cats", "dogs"].enumerated() {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<(4 * batch) {
                try ImageCodec.writeJPEG(Self.photo(width: 500, height: 375, tint: c, rng: &g),
                                         to: dir.appendingPathComponent("\(name).\(i).jpg"))
            }
        }
        let source = try ClassFolderSource(directory: root)
        loader = BatchLoader(source: source, batchSize: batch, input: InputSpec(height: size, width: size, preprocessing: .caffe),
                             augmentation: .tutorial, shuffle: true, seed: seed)
        iterator = loader.batches(epoch: 0)
    }

    /// Smooth colour gradients with texture and noise: compresses like a photograph (about
    /// 40-70 KB at quality 90), unlike a flat or pure-noise image.
    static func photo(width: Int, height: Int, tint: Int, rng: inout SeededGenerator) -> RGBImage {
        let fx = Float(rng.uniform(0.01, 0.05)), fy = Float(rng.uniform(0.01, 0.05))
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let base = 110 + 60 * sinf(Float(x) * fx) * cosf(Float(y) * fy)
                let i = (y * width + x) * 3
                for ch in 0..<3 {
                    let v = base + (ch == tint * 2 ? 40 : 0) + rng.uniform(-18, 18)
                    px[i + ch] = UInt8(max(0, min(255, v)))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    func next() -> Batch {
        if let b = iterator.next() { return b }
        epoch += 1
        iterator = loader.batches(epoch: epoch)
        return iterator.next()!
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

extension Graph {
    /// Multiply-accumulates of a forward for `input` up to `node`: every convolution's and dense
    /// layer's (what GFLOP/s figures count, whatever algorithm runs).
    public func multiplyAccumulates(_ input: [Int], upTo node: Node? = nil) throws -> Int {
        let shapes = try self.shapes(input)
        return nodes.filter { $0.index <= (node ?? output).index }.reduce(0) { sum, n in
            let out = shapes[n.index]
            switch layer(at: n) {
            case let c as Conv2D: return sum + out.reduce(1, *) * c.kernel.value.shape.dropLast().reduce(1, *)
            case let d as Dense: return sum + out[0] * d.kernel.value.count
            default: return sum
            }
        }
    }
}

/// Seconds of each of `steps` calls of `body` after `warmup` untimed ones.
func stepSeconds(warmup: Int, steps: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var times: [Double] = []
    for i in 0..<(warmup + steps) {
        let t0 = Date()
        try body()
        if i >= warmup { times.append(Date().timeIntervalSince(t0)) }
    }
    return times
}

/// The middle element (the upper one of an even count), as every vggtl benchmark reports.
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Uniform random floats in [-1, 1) from a seed (benchmarks, tests, synthetic data).
func uniformValues(_ count: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.uniform(-1, 1) }
}

/// One kernel's timing in the per-layer benchmark.
public struct KernelResult: Codable, Sendable {
    public var layer: String
    /// forward, backward-data, backward-filter, pool-forward, ...
    public var pass: String
    public var algorithm: String
    public var milliseconds: Double
    /// Direct-convolution FLOPs per second (2 x MACs of the 3x3 convolution), whatever the algorithm did.
    public var gflops: Double?
    /// Bytes read and written per second (memory-bound kernels).
    public var gbPerSecond: Double?
    public var percentOfPeak: Double?
}

extension WorkloadBench {
    /// Times every case of `KernelCases.vgg16` (every VGG16 convolution, pooling layer, and the
    /// elementwise and optimizer kernels) at one image size and batch: the median of `repeats`
    /// runs after one warm-up. Each case's tensors are freed before the next is set up.
    public static func layers(size: Int, batch: Int, on device: Device, repeats: Int = 3, gemmPeak: Double?) throws -> [KernelResult] {
        try kernels(KernelCases.vgg16(on: device, size: size, batch: batch), repeats: repeats, gemmPeak: gemmPeak)
    }

    /// Times each case: the median of `repeats` calls after one warm-up.
    public static func kernels(_ cases: [KernelCase], repeats: Int = 3, gemmPeak: Double?) throws -> [KernelResult] {
        try cases.map { c in
            let seconds = median(try stepSeconds(warmup: 1, steps: repeats, c.prepare()))
            // The name after the warm-up: a plan that tunes itself chose during it.
            let gf = c.flops.map { $0 / seconds / 1e9 }
            return KernelResult(layer: c.layer, pass: c.pass, algorithm: c.algorithm, milliseconds: seconds * 1e3, gflops: gf,
                                gbPerSecond: c.bytes.map { $0 / seconds / 1e9 }, percentOfPeak: gf.flatMap { g in gemmPeak.map { 100 * g / $0 } })
        }
    }
}

import Foundation
import VGGTLTensors
import VGGTLModels

/// One kernel call of the per-layer benchmark: which layer and pass, how much work one call does,
/// and how to set it up. `vggtl bench --layers` and the package-benchmark suite in Benchmarks/
/// both time these, so the two always measure the same calls at the same shapes.
public struct KernelCase {
    /// Keras layer name (block3_conv1, block2_pool), or "N floats" for the elementwise kernels.
    public let layer: String
    /// forward, backward-data, backward-filter (convolutions); forward, backward (pools);
    /// relu, relu-backward, sgd-momentum, adam (elementwise).
    public let pass: String
    /// The algorithm this device's plan runs for this pass at this shape (printed next to the
    /// time). Read when asked: a plan that tunes itself at first use names its choice after
    /// the case has run.
    public var algorithm: String { algorithmName() }
    private let algorithmName: () -> String
    /// Direct-convolution FLOPs of one call (2 x MACs of the 3x3 convolution), whatever the
    /// algorithm really does; nil for memory-bound kernels.
    public let flops: Double?
    /// Bytes one call reads and writes (memory-bound kernels); nil for convolutions.
    public let bytes: Double?
    /// Allocates the case's tensors and returns the body to time: one kernel call followed by
    /// `device.synchronize()`. The tensors live as long as the returned closure, so running the
    /// cases one after another holds one case's memory at a time (allocating every case of
    /// VGG16 at 150x150 batch 16 up front would hold over 2 GB).
    public let prepare: () throws -> () throws -> Void

    public var name: String { "\(layer) \(pass)" }

    public init(layer: String, pass: String, algorithm: @escaping @autoclosure () -> String, flops: Double?, bytes: Double?,
                prepare: @escaping () throws -> () throws -> Void) {
        self.layer = layer; self.pass = pass; algorithmName = algorithm
        self.flops = flops; self.bytes = bytes; self.prepare = prepare
    }
}

public enum KernelCases {
    /// Every VGG16 convolution (forward with bias + ReLU, backward-data except for the first layer,
    /// whose input gradient nothing needs, backward-filter with bias gradient), every pooling layer
    /// (forward, backward), and the ReLU/SGD-momentum/Adam kernels over the largest activation,
    /// at one image size and batch, in network order.
    public static func vgg16(on device: Device, size: Int, batch: Int) throws -> [KernelCase] {
        var cases: [KernelCase] = []
        var side = size, channels = 3
        var largest = 0
        for (b, block) in VGG16.blocks.enumerated() {
            for i in 1...block.convs {
                let g = try WindowGeometry(batch: batch, inH: side, inW: side, inC: channels, kernel: (3, 3), stride: (1, 1),
                                           padding: .same, outC: block.filters)
                // Captured by the closures below, which must not see the loop's later values.
                let xShape = [batch, side, side, channels], yShape = [batch, side, side, block.filters]
                let wShape = [3, 3, channels, block.filters], filters = block.filters
                let makeX = { try Tensor(uniformValues(g.inCount, seed: 3), shape: xShape, on: device) }
                let makeW = { try Tensor(uniformValues(9 * xShape[3] * filters, seed: 4).map { $0 * 0.05 }, shape: wShape, on: device) }
                let makeDY = { try Tensor(uniformValues(g.outCount, seed: 5), shape: yShape, on: device) }
                let flops = 2.0 * Double(g.outPixels * g.patchSize * g.outC)
                let name = "block\(b + 1)_conv\(i)", plan = try device.convolutionPlan(g)
                func add(_ pass: String, _ algorithm: @escaping @autoclosure () -> String, _ prepare: @escaping () throws -> () throws -> Void) {
                    cases.append(KernelCase(layer: name, pass: pass, algorithm: algorithm(), flops: flops, bytes: nil, prepare: prepare))
                }
                // As a layer that trains runs them: the kernel is not constant, so transforms are redone per call.
                add("forward", plan.forwardAlgorithm) {
                    let (x, w, bias, y) = try (makeX(), makeW(), Tensor(zeros: [filters], on: device), Tensor(zeros: yShape, on: device))
                    return { try plan.forward(x: x, w: w, bias: bias, relu: true, y: y, kernelIsConstant: false); device.synchronize() }
                }
                if channels > 3 {
                    add("backward-data", plan.backwardDataAlgorithm) {
                        let (dy, w, dx) = try (makeDY(), makeW(), Tensor(zeros: xShape, on: device))
                        return { try plan.backwardData(dy: dy, w: w, dx: dx, kernelIsConstant: false); device.synchronize() }
                    }
                }
                add("backward-filter", plan.backwardFilterAlgorithm) {
                    let (x, dy, dw, db) = try (makeX(), makeDY(), Tensor(zeros: wShape, on: device), Tensor(zeros: [filters], on: device))
                    return { try plan.backwardFilter(x: x, dy: dy, dw: dw, db: db); device.synchronize() }
                }
                largest = max(largest, g.outCount)
                channels = block.filters
            }
            let pg = try WindowGeometry(batch: batch, inH: side, inW: side, inC: channels, kernel: (2, 2), stride: (2, 2), padding: .valid)
            let xShape = [batch, side, side, channels]
            let makeX = { try Tensor(uniformValues(pg.inCount, seed: 6), shape: xShape, on: device) }
            // Forward reads x and writes y; backward reads x and dy and writes dx.
            let bytes = Double(4 * (pg.inCount + pg.outCount))
            let name = "block\(b + 1)_pool"
            cases.append(KernelCase(layer: name, pass: "forward", algorithm: "max-2x2", flops: nil, bytes: bytes) {
                let (x, y) = try (makeX(), Tensor(zeros: [pg.outCount], on: device))
                return { device.maxPool(x.buffer, y.buffer, pg); device.synchronize() }
            })
            cases.append(KernelCase(layer: name, pass: "backward", algorithm: "max-2x2", flops: nil, bytes: bytes + Double(4 * pg.inCount)) {
                let (x, dy, dx) = try (makeX(), Tensor(uniformValues(pg.outCount, seed: 5), shape: [pg.outCount], on: device),
                                       Tensor(zeros: [pg.inCount], on: device))
                return { device.maxPoolBackward(x.buffer, dy.buffer, dx.buffer, pg); device.synchronize() }
            })
            side /= 2
        }
        // Elementwise and optimizer kernels over the largest activation (block1's), the size that
        // dominates their share of a training step.
        let n = largest
        let random = { (seed: UInt64) in try Tensor(uniformValues(n, seed: seed), shape: [n], on: device) }
        let zeros = { try Tensor(zeros: [n], on: device) }
        let floats = Double(n * 4)
        func add(_ pass: String, _ bytes: Double, _ prepare: @escaping () throws -> () throws -> Void) {
            cases.append(KernelCase(layer: "\(n) floats", pass: pass, algorithm: "elementwise", flops: nil, bytes: bytes, prepare: prepare))
        }
        add("relu", 2 * floats) {
            let (x, y) = try (random(7), zeros())
            return { device.relu(x.buffer, y.buffer, count: n); device.synchronize() }
        }
        add("relu-backward", 3 * floats) {
            let (y, dy, dx) = try (random(7), random(8), zeros())
            return { device.reluBackward(y.buffer, dy.buffer, dx.buffer, count: n); device.synchronize() }
        }
        add("sgd-momentum", 5 * floats) {
            let (p, grad, velocity) = try (zeros(), random(8), zeros())
            return { device.sgdUpdate(param: p.buffer, grad: grad.buffer, velocity: velocity.buffer, count: n, SGDConfig(lr: 1e-4, momentum: 0.9)); device.synchronize() }
        }
        add("adam", 7 * floats) {
            // The second moment starts at zero: Adam takes its square root, so it must never be negative.
            let (p, grad, m, v) = try (zeros(), random(8), zeros(), zeros())
            return { device.adamUpdate(param: p.buffer, grad: grad.buffer, m: m.buffer, v: v.buffer, count: n, step: 1, AdamConfig(lr: 1e-4)); device.synchronize() }
        }
        return cases
    }
    /// Depthwise convolutions of the newer backbones at one image size (224 gives their real
    /// shapes): MobileNetV2's 3x3 stride 2 (block_1_depthwise) and stride 1 (block_2_depthwise),
    /// EfficientNetB0's 5x5 stride 2 (block3a_dwconv), ConvNeXt-Tiny's 7x7 on its first stage
    /// (torch padding 3). Forward, backward-data,
    /// backward-filter each; all memory-bound, so GB/s counts the bytes a call must move at least
    /// (its inputs read once, its output written once).
    public static func depthwise(on device: Device, size: Int, batch: Int) throws -> [KernelCase] {
        let shapes: [(layer: String, side: Int, channels: Int, k: Int, s: Int, padding: Padding)] = [
            ("mbv2_block_1", size / 2, 96, 3, 2, .same),
            ("mbv2_block_2", size / 4, 144, 3, 1, .same),
            ("effb0_block3a", size / 4, 144, 5, 2, .same),
            ("convnext_s0", size / 4, 96, 7, 1, .symmetric(3)),
        ]
        var cases: [KernelCase] = []
        for c in shapes {
            let g = try WindowGeometry(batch: batch, inH: c.side, inW: c.side, inC: c.channels, kernel: (c.k, c.k), stride: (c.s, c.s),
                                       padding: c.padding)
            let taps = c.k * c.k * c.channels
            let makeX = { try Tensor(uniformValues(g.inCount, seed: 3), shape: [g.inCount], on: device) }
            let makeW = { try Tensor(uniformValues(taps, seed: 4), shape: [taps], on: device) }
            let makeDY = { try Tensor(uniformValues(g.outCount, seed: 5), shape: [g.outCount], on: device) }
            let bytes = Double(4 * (g.inCount + g.outCount + taps))
            let algorithm = "depthwise \(c.k)x\(c.k)/\(c.s) C\(c.channels)"
            cases.append(KernelCase(layer: c.layer, pass: "forward", algorithm: algorithm, flops: nil, bytes: bytes) {
                let (x, w, y) = try (makeX(), makeW(), Tensor(zeros: [g.outCount], on: device))
                return { device.depthwiseConv(x.buffer, w.buffer, bias: nil, y.buffer, g); device.synchronize() }
            })
            cases.append(KernelCase(layer: c.layer, pass: "backward-data", algorithm: algorithm, flops: nil, bytes: bytes) {
                let (dy, w, dx) = try (makeDY(), makeW(), Tensor(zeros: [g.inCount], on: device))
                return { device.depthwiseConvBackwardData(dy.buffer, w.buffer, dx.buffer, g); device.synchronize() }
            })
            cases.append(KernelCase(layer: c.layer, pass: "backward-filter", algorithm: algorithm, flops: nil, bytes: bytes) {
                let (x, dy, dw) = try (makeX(), makeDY(), Tensor(zeros: [taps], on: device))
                return { device.depthwiseConvBackwardFilter(x.buffer, dy.buffer, dw.buffer, g); device.synchronize() }
            })
        }
        return cases
    }
}

import XCTest
import VGGTL

/// A 3-layer conv net trained on the same synthetic batches on both backends: it must learn,
/// and the two loss curves must agree step by step. And the memory planner: networks whose
/// buffers are shared, overwritten in place and concatenated without copies must compute
/// exactly what the same networks with a buffer per value compute.
final class TrainingAgreementTests: VGGTLTestCase {
    static let classes = 4, size = 12, batch = 8

    /// Class c is a bright square in quadrant c over noise: learnable, not trivial.
    static func batch(_ step: Int) -> (x: [Float], y: [Float]) {
        var g = SeededGenerator(seed: 1000 + UInt64(step))
        var x = [Float](), y = [Float]()
        for _ in 0..<batch {
            let c = Int(g.next() % UInt64(classes))
            y.append(Float(c))
            for i in 0..<size { for j in 0..<size { for ch in 0..<3 {
                let inside = (i / (size / 2)) * 2 + (j / (size / 2)) == c
                x.append(g.uniform(-0.5, 0.5) + (inside ? 1.0 + 0.2 * Float(ch) : 0))
            } } }
        }
        return (x, y)
    }

    func train(on d: Device, steps: Int) throws -> [Float] {
        var rng = SeededGenerator(seed: 77)
        let model = Graph([
            try Conv2D("conv1", inChannels: 3, filters: 8, on: d, rng: &rng),
            Pool2D("pool1", .max),
            try Conv2D("conv2", inChannels: 8, filters: 16, on: d, rng: &rng),
            GlobalAveragePooling2D("gap"),
            try Dense("predictions", inputs: 16, units: Self.classes, on: d, rng: &rng),
        ])
        let opt = SGD(learningRate: 0.1, momentum: 0.9)
        let loss = Loss(.softmaxCrossEntropy)
        var losses: [Float] = []
        for step in 0..<steps {
            let (xv, yv) = Self.batch(step)
            let x = try Tensor(xv, shape: [Self.batch, Self.size, Self.size, 3], on: d)
            let y = try Tensor(yv, shape: [Self.batch], on: d)
            let logits = try model.forward(x, .training)
            let (l, grad) = try loss.compute(logits: logits, labels: y)
            try model.backward(grad)
            try opt.update(model.trainableParameters)
            losses.append(l)
        }
        return losses
    }

    func testThreeLayerConvNetLossCurvesAgree() throws {
        let steps = 30
        let cpu = try train(on: cpuDevice, steps: steps)
        let cl = try train(on: openclDevice, steps: steps)
        for i in 0..<steps {
            XCTAssertEqual(cl[i], cpu[i], accuracy: 1e-3 * max(1, abs(cpu[i])), "step \(i): cpu \(cpu[i]) opencl \(cl[i])")
        }
        let first = cpu.prefix(5).reduce(0, +) / 5, last = cpu.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(last, 0.6 * first, "the net did not learn: mean loss \(first) -> \(last)")
    }

    /// A chain with every kind of layer: BatchNorm, fused and standalone ReLU, pooling, Flatten, Dropout.
    static func chain(_ d: Device) throws -> Graph {
        var rng = SeededGenerator(seed: 5)
        return Graph([
            try Conv2D("conv1", inChannels: 3, filters: 8, on: d, rng: &rng),
            try BatchNormalization("bn1", channels: 8, on: d),
            try Conv2D("conv2", inChannels: 8, filters: 8, on: d, rng: &rng),
            Pool2D("pool1", .max),
            ReLU("relu"),
            try Conv2D("conv3", inChannels: 8, filters: 4, activation: .linear, on: d, rng: &rng),
            GlobalAveragePooling2D("gap"),
            Flatten(),
            try Dense("fc1", inputs: 4, units: 16, activation: .relu, on: d, rng: &rng),
            try Dropout("dropout", rate: 0.3, seed: 9),
            try Dense("predictions", inputs: 16, units: classes, on: d, rng: &rng),
        ])
    }

    /// ResNet's structure in small: zero padding, a stem, an identity block (a tensor read by
    /// the branch and the shortcut), a strided block with a convolution shortcut (v1 and v1.5
    /// strides), max pooling, global average pooling.
    static func residual(_ d: Device) throws -> Graph {
        let g = Graph()
        var b = TrunkBuilder(graph: g, device: d, seed: SeededGenerator(seed: 6), batchNormMomentum: 0.9, inputChannels: 3)
        var x = b.layer(ZeroPadding2D("pad", top: 1, bottom: 2, left: 0, right: 1), g.input)
        x = try b.conv("stem", x, filters: 8, kernel: (3, 3), padding: .valid, useBias: true)
        x = try b.batchNorm("stem_bn", x, epsilon: 1e-3)
        x = b.relu("stem_relu", x)
        for (k, (stride, v15)) in [(1, false), (2, false), (2, true)].enumerated() {
            var shortcut = x
            let filters = k == 0 ? 8 : 12
            if stride > 1 {
                shortcut = try b.conv("b\(k)_0_conv", x, filters: filters, kernel: (1, 1), strides: (stride, stride), padding: .valid, useBias: false)
                shortcut = try b.batchNorm("b\(k)_0_bn", shortcut, epsilon: 1e-5)
            }
            let s1 = v15 ? 1 : stride, s2 = v15 ? stride : 1
            var y = try b.conv("b\(k)_1_conv", x, filters: 4, kernel: (1, 1), strides: (s1, s1), padding: .valid, useBias: true)
            y = try b.batchNorm("b\(k)_1_bn", y, epsilon: 1e-3)
            y = b.relu("b\(k)_1_relu", y)
            y = try b.conv("b\(k)_2_conv", y, filters: 4, kernel: (3, 3), strides: (s2, s2), padding: v15 ? .symmetric(1) : .same, useBias: true)
            y = try b.batchNorm("b\(k)_2_bn", y, epsilon: 1e-3)
            y = b.relu("b\(k)_2_relu", y)
            y = try b.conv("b\(k)_3_conv", y, filters: filters, kernel: (1, 1), padding: .valid, useBias: true)
            y = try b.batchNorm("b\(k)_3_bn", y, epsilon: 1e-3)
            x = b.relu("b\(k)_out", b.add(Add("b\(k)_add"), [shortcut, y], channels: filters))
            if k == 0 {
                x = b.layer(ZeroPadding2D("pool_pad", 1), x)
                x = b.layer(Pool2D("pool", .max, poolSize: (3, 3), strides: (2, 2)), x)
            }
        }
        x = b.layer(GlobalAveragePooling2D("gap"), x)
        var rng = b.rng
        g.add(try Dense("predictions", inputs: 12, units: classes, on: d, rng: &rng), x)
        return g
    }

    /// InceptionV3's structure in small: a block read by four branches, 1x3/3x1 convolutions,
    /// BatchNorm without gamma, both average pools, a max-pool branch (copied into the
    /// concatenation), a nested concatenation, ReLUs writing into channel slices.
    static func inception(_ d: Device) throws -> Graph {
        let g = Graph()
        var b = TrunkBuilder(graph: g, device: d, seed: SeededGenerator(seed: 7), batchNormMomentum: 0.9, inputChannels: 3)
        func convBN(_ x: Graph.Node, _ f: Int, _ k: (Int, Int), _ name: String, strides: Int = 1, padding: Padding = .same, scale: Bool = false) throws -> Graph.Node {
            var y = try b.conv("\(name)_conv", x, filters: f, kernel: k, strides: (strides, strides), padding: padding, useBias: false)
            y = try b.batchNorm("\(name)_bn", y, epsilon: 1e-3, scale: scale)
            return b.relu("\(name)_relu", y)
        }
        var x = try convBN(g.input, 8, (3, 3), "stem", padding: .valid, scale: true)
        for k in 0..<2 {
            let b1 = try convBN(x, 4, (1, 1), "m\(k)_b1")
            let b2 = try convBN(x, 4, (1, 1), "m\(k)_b2")
            let b2a = try convBN(b2, 3, (1, 3), "m\(k)_b2a")
            let b2b = try convBN(b2, 5, (3, 1), "m\(k)_b2b")
            let nested = b.add(Concatenate("m\(k)_nested"), [b2a, b2b], channels: 8)
            let pool = b.layer(Pool2D("m\(k)_avg", .average, poolSize: (3, 3), strides: (1, 1), padding: k == 0 ? .same : .symmetric(1),
                                      countPadding: k == 1), x)
            let b3 = try convBN(pool, 2, (1, 1), "m\(k)_b3")
            let b4 = b.layer(Pool2D("m\(k)_max", .max, poolSize: (3, 3), strides: (1, 1), padding: .same), x)
            x = b.add(Concatenate("mixed\(k)"), [b1, nested, b3, b4], channels: 4 + 8 + 2 + b.channels(x))
        }
        x = try convBN(x, 6, (3, 3), "reduce", strides: 2, padding: .valid)
        x = b.layer(GlobalAveragePooling2D("gap"), x)
        x = b.layer(try Dropout("dropout", rate: 0.25, seed: 3), x)
        var rng = b.rng
        g.add(try Dense("predictions", inputs: 6, units: classes, on: d, rng: &rng), x)
        return g
    }

    /// One training forward and backward; returns the logits, then every parameter gradient
    /// and BatchNorm moving statistic.
    func step(_ net: Graph, on d: Device, seed: Int) throws -> [[Float]] {
        let (xv, yv) = Self.batch(seed)
        let x = try Tensor(xv, shape: [Self.batch, Self.size, Self.size, 3], on: d)
        let y = try Tensor(yv, shape: [Self.batch], on: d)
        let logits = try net.forward(x, .training)
        let (_, grad) = try Loss(.softmaxCrossEntropy).compute(logits: logits, labels: y)
        var ready: [String] = []
        try net.backward(grad) { ready += $0.map(\.name) }
        XCTAssertEqual(Set(ready), Set(net.trainableParameters.map(\.name)), "gradientsReady reports every trainable parameter once")
        XCTAssertEqual(ready.count, net.trainableParameters.count)
        return [logits.toArray()] + net.trainableParameters.map { $0.grad!.toArray() }
            + net.layers.compactMap { $0 as? BatchNormalization }.flatMap { [$0.movingMean.toArray(), $0.movingVariance.toArray()] }
    }

    /// The planned memory (shared buffers, layers in place, Add/Flatten/Concatenate without
    /// copies, ReLU masks in place) gives bit-identical logits, gradients and statistics to the
    /// same network with a buffer per value and copies instead of views, on both backends, with
    /// every layer training and with a frozen front; it holds less memory and allocates nothing
    /// after the first step.
    func testPlannedMemoryIsBitIdenticalToSeparateBuffers() throws {
        let builders: [(String, (Device) throws -> Graph)] = [("chain", Self.chain), ("residual", Self.residual), ("inception", Self.inception)]
        for d in [cpuDevice as Device, openclDevice as Device] {
            for (name, build) in builders {
                for frozenFront in [false, true] {
                    let planned = try build(d), separate = try build(d)
                    separate.memoryPolicy = .separate
                    if frozenFront {
                        // Freeze the first third of the layers: their BatchNorm runs in inference mode.
                        for net in [planned, separate] { for l in net.layers.prefix(net.layers.count / 3) { l.trainable = false } }
                    }
                    var bytes: [Int] = []
                    for s in 0..<3 {
                        let a = try step(planned, on: d, seed: s), b = try step(separate, on: d, seed: s)
                        XCTAssertEqual(a.count, b.count)
                        for (i, (u, v)) in zip(a, b).enumerated() {
                            XCTAssertEqual(u, v, "\(name) frozen front \(frozenFront), step \(s), tensor \(i) on \(d.name)")
                        }
                        bytes.append(planned.memoryBytes)
                    }
                    XCTAssertEqual(Set(bytes).count, 1, "\(name): buffers changed after the first step: \(bytes)")
                    XCTAssertLessThan(planned.memoryBytes, separate.memoryBytes, "\(name) frozen \(frozenFront)")
                }
            }
        }
    }

    /// The chain's gradients fit in the buffers the old three-buffer arena bound allowed, and
    /// with a frozen trunk no gradient memory is planned for it.
    func testGradientMemoryOfAChain() throws {
        let net = try Self.chain(cpuDevice)
        _ = try step(net, on: cpuDevice, seed: 0)
        let largest = Self.batch * Self.size * Self.size * 8 * MemoryLayout<Float>.size
        let (_, gradients) = net.lastPlanBytes!
        XCTAssertGreaterThan(gradients, 0)
        XCTAssertLessThanOrEqual(gradients, 3 * largest)
        for l in net.layers.prefix(8) { l.trainable = false }
        _ = try step(net, on: cpuDevice, seed: 1)
        XCTAssertLessThan(net.lastPlanBytes!.gradients, largest, "only the head's gradients remain")
    }
}

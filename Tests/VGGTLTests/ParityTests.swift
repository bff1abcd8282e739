import XCTest
import VGGTL

/// The OpenCL device these tests compare against the CPU (PoCL in CI). Missing OpenCL is a
/// failure, not a skip: CI installs pocl-opencl-icd so that every kernel is exercised. One test
/// at a time uses it (see cpuDevice).
nonisolated(unsafe) let openclDevice: OpenCLDevice = {
    do { return try OpenCLDevice(index: 0) } catch { fatalError("no OpenCL device for parity tests: \(error)") }
}()

/// CPU vs OpenCL, forward and backward, for every layer and primitive, over shapes with odd
/// sizes that are multiples of no tile, batch 1, and 3, 64 and 512 channels.
final class ParityTests: VGGTLTestCase {
    /// Builds the same layer (same seed) on both devices, runs forward and backward on the same
    /// input and upstream gradient, and compares output, dx and every parameter gradient.
    func parity(_ make: (Device) throws -> Layer, input shape: [Int], training: Bool = true, tol: Float = 1e-4,
                seed: UInt64 = 1, devices: [Device] = [cpuDevice, openclDevice],
                file: StaticString = #filePath, line: UInt = #line) throws {
        let xv = randomArray(shape.reduce(1, *), seed: seed)
        var results: [[[Float]]] = []
        var name = ""
        for device in devices {
            let layer = try make(device)
            name = layer.name
            let net = Graph([layer])
            net.computesInputGradient = true
            let x = try Tensor(xv, shape: shape, on: device)
            let y = try net.forward(x, StepContext(training: training))
            let dy = try Tensor(randomArray(y.count, seed: seed + 1), shape: y.shape, on: device)
            try net.backward(dy)
            var r = [y.toArray(), net.inputGradient?.toArray() ?? []]
            r += layer.parameters.map { $0.grad?.toArray() ?? [] }
            if let bn = layer as? BatchNormalization { r += [bn.movingMean.toArray(), bn.movingVariance.toArray()] }
            results.append(r)
        }
        let labels = ["output", "dx"] + (2..<results[0].count).map { "tensor \($0)" }
        for (i, label) in labels.enumerated() {
            assertClose(results[1][i], results[0][i], tol: tol, "\(name) \(shape) \(label)", file: file, line: line)
        }
    }

    func testConv2D() throws {
        let cases: [(shape: [Int], filters: Int, k: Int, s: Int, p: Padding, act: Activation)] = [
            ([1, 7, 9, 3], 64, 3, 1, .same, .relu),       // VGG block1_conv1 at an odd size, batch 1
            ([2, 13, 11, 64], 64, 3, 1, .same, .relu),
            ([1, 5, 7, 512], 512, 3, 1, .same, .relu),    // block5 channel count
            ([2, 6, 5, 512], 64, 1, 1, .same, .linear),   // pointwise path
            ([2, 11, 9, 3], 8, 5, 2, .valid, .linear),
            ([1, 15, 13, 3], 16, 7, 2, .same, .relu),     // ResNet stem shape class
            ([3, 9, 10, 64], 5, 3, 2, .valid, .linear),
            ([1, 8, 8, 3], 4, 1, 2, .valid, .linear),
        ]
        for c in cases {
            try parity({ d in
                var rng = SeededGenerator(seed: 9)
                return try Conv2D("conv_\(c.k)x\(c.k)s\(c.s)\(c.p)", inChannels: c.shape[3], filters: c.filters, kernelSize: (c.k, c.k),
                                  strides: (c.s, c.s), padding: c.p, activation: c.act, on: d, rng: &rng)
            }, input: c.shape)
        }
    }

    /// ResNet50's and InceptionV3's geometries: 7x7 stride 2 on 3 channels, 1x1 stride 2,
    /// 1x7/7x1, 1x3/3x1, torchvision's symmetric padding on even sizes with stride 2, explicit
    /// asymmetric padding.
    func testConv2DResNetAndInceptionGeometries() throws {
        let cases: [(shape: [Int], filters: Int, k: (Int, Int), s: Int, p: Padding)] = [
            ([2, 23, 22, 3], 64, (7, 7), 2, .valid),
            ([1, 16, 15, 3], 16, (7, 7), 2, .symmetric(3)),
            ([2, 9, 8, 64], 32, (1, 1), 2, .valid),
            ([1, 7, 9, 96], 32, (1, 7), 1, .same),
            ([1, 9, 7, 32], 48, (7, 1), 1, .same),
            ([2, 5, 6, 64], 40, (1, 3), 1, .same),
            ([2, 6, 5, 64], 40, (3, 1), 1, .same),
            ([1, 10, 8, 64], 64, (3, 3), 2, .symmetric(1)),
            ([1, 10, 8, 64], 64, (3, 3), 2, .same),
            ([1, 7, 6, 16], 8, (3, 3), 1, .explicit(top: 0, bottom: 2, left: 1, right: 0)),
        ]
        for c in cases {
            try parity({ d in
                var rng = SeededGenerator(seed: 12)
                return try Conv2D("conv_\(c.k.0)x\(c.k.1)s\(c.s)\(c.p)", inChannels: c.shape[3], filters: c.filters, kernelSize: c.k,
                                  strides: (c.s, c.s), padding: c.p, activation: .linear, useBias: false, on: d, rng: &rng)
            }, input: c.shape)
        }
    }

    func testResNetAndInceptionPoolingAndPadding() throws {
        try parity({ _ in Pool2D("max3s2valid", .max, poolSize: (3, 3), strides: (2, 2)) }, input: [2, 11, 9, 64], tol: 1e-6)
        try parity({ _ in Pool2D("avg3s1same", .average, poolSize: (3, 3), strides: (1, 1), padding: .same) }, input: [2, 7, 6, 64], tol: 1e-5)
        try parity({ _ in Pool2D("avg3s1count", .average, poolSize: (3, 3), strides: (1, 1), padding: .symmetric(1), countPadding: true) },
                   input: [2, 7, 6, 64], tol: 1e-5)
        try parity({ _ in ZeroPadding2D("pad", top: 3, bottom: 3, left: 3, right: 2) }, input: [2, 5, 7, 3], tol: 0)
        try parity({ _ in ZeroPadding2D("pad1", 1) }, input: [1, 6, 6, 64], tol: 0)
    }

    func testBatchNormalizationWithoutGamma() throws {
        for training in [true, false] {
            try parity({ d in
                let bn = try BatchNormalization("bn_noscale", channels: 48, epsilon: 1e-3, scale: false, on: d)
                bn.frozenStatistics = !training
                return bn
            }, input: [2, 5, 7, 48])
        }
    }

    /// The primitives behind Add, Concatenate's slices and ZeroPadding2D.
    func testViewPrimitives() throws {
        let (rows, cols, stride) = (37, 5, 13)
        let a = randomArray(rows * stride, seed: 30), b = randomArray(rows * stride, seed: 31)
        var out: [[Float]] = []
        for d in [cpuDevice as Device, openclDevice] {
            let ta = try Tensor(a, shape: [rows * stride], on: d), tb = try Tensor(b, shape: [rows * stride], on: d)
            let sum = try Tensor(zeros: [rows * stride], on: d)
            d.add(ta.buffer, tb.buffer, sum.buffer, count: rows * stride)
            let block = try Tensor(zeros: [2 * rows * stride], on: d)
            d.copyBlock(ta.buffer, BlockLayout(offset: 3, outerStride: 4 * stride, rowStride: stride), to: block.buffer,
                        BlockLayout(offset: 1, outerStride: 5 * stride, rowStride: stride + 1), outer: 3, rows: 4, cols: cols)
            let relu = try Tensor(zeros: [rows * stride], on: d)
            d.reluRows(ta.buffer, RowLayout(offset: 2, stride: stride), relu.buffer, RowLayout(offset: 7, stride: stride), rows: rows - 1, cols: cols)
            let back = try Tensor(zeros: [rows * stride], on: d)
            d.reluBackwardRows(ta.buffer, RowLayout(offset: 1, stride: stride), tb.buffer, RowLayout(offset: 4, stride: stride),
                               back.buffer, RowLayout(offset: 0, stride: cols), rows: rows, cols: cols)
            out.append(sum.toArray() + block.toArray() + relu.toArray() + back.toArray())
        }
        XCTAssertEqual(out[0], out[1])
        XCTAssertEqual(out[0][0], a[0] + b[0])
        XCTAssertEqual(out[0][rows * stride + 1 + 5 * stride + stride + 1 + 2], a[3 + 4 * stride + stride + 2], "copyBlock (1, 1, 2)")
    }

    /// Whole small ResNet- and Inception-like networks: logits and every gradient, CPU vs OpenCL.
    func testResidualAndInceptionNetworks() throws {
        for build in [TrainingAgreementTests.residual, TrainingAgreementTests.inception] {
            var results: [[[Float]]] = []
            for d in [cpuDevice as Device, openclDevice] {
                let net = try build(d)
                let (xv, yv) = TrainingAgreementTests.batch(1)
                let logits = try net.forward(Tensor(xv, shape: [8, 12, 12, 3], on: d), .training)
                let (_, g) = try Loss(.softmaxCrossEntropy).compute(logits: logits, labels: Tensor(yv, shape: [8], on: d))
                try net.backward(g)
                results.append([logits.toArray()] + net.parameters.map { $0.grad!.toArray() })
            }
            for (i, (cpu, cl)) in zip(results[0], results[1]).enumerated() {
                // A convolution bias before a training-mode BatchNorm has an exactly zero gradient
                // in theory: both sides must give rounding noise only.
                if cpu.map(abs).max()! < 1e-6 {
                    XCTAssertLessThan(cl.map(abs).max()!, 1e-5, "network tensor \(i) should be ~0")
                    continue
                }
                assertClose(cl, cpu, tol: 1e-3, "network tensor \(i)")
            }
        }
    }

    func testConv2DTiled() throws {
        // 13 output rows per tile: tiles straddle image rows and images, on both devices' generic path.
        let tile = 13 * 576
        let cpu = try CPUDevice(options: .init(convolution: .im2colWholeTile, im2colTileFloats: tile))
        let cl = try OpenCLDevice(index: 0, options: .init(im2colTileFloats: tile, convolution: .im2col))
        let g = try WindowGeometry(batch: 2, inH: 7, inW: 9, inC: 64, kernel: (3, 3), stride: (1, 1), padding: .same, outC: 32)
        for d in [cpu as Device, cl] {
            XCTAssertEqual(try d.convolutionPlan(g).forwardAlgorithm, "im2col-gemm(tile 13 rows)", d.name)
        }
        try parity({ d in
            var rng = SeededGenerator(seed: 10)
            return try Conv2D("tiled", inChannels: 64, filters: 32, on: d, rng: &rng)
        }, input: [2, 7, 9, 64], devices: [cpu, cl])
    }

    func testDense() throws {
        for (shape, units, act) in [([1, 512], 256, Activation.relu), ([5, 37], 3, .linear), ([4, 4096], 10, .linear)] {
            try parity({ d in
                var rng = SeededGenerator(seed: 11)
                return try Dense("fc", inputs: shape[1], units: units, activation: act, on: d, rng: &rng)
            }, input: shape)
        }
    }

    func testPooling() throws {
        try parity({ _ in Pool2D("max2", .max) }, input: [1, 7, 9, 64], tol: 1e-6)
        try parity({ _ in Pool2D("max2", .max) }, input: [2, 6, 6, 512], tol: 1e-6)
        try parity({ _ in Pool2D("max3s2", .max, poolSize: (3, 3), strides: (2, 2)) }, input: [2, 9, 7, 3], tol: 1e-6)
        try parity({ _ in Pool2D("max3s2same", .max, poolSize: (3, 3), strides: (2, 2), padding: .same) }, input: [1, 8, 7, 64], tol: 1e-6)
        try parity({ _ in Pool2D("avg2", .average) }, input: [2, 5, 7, 3], tol: 1e-5)
        try parity({ _ in Pool2D("avg3s2same", .average, poolSize: (3, 3), strides: (2, 2), padding: .same) }, input: [1, 7, 7, 64], tol: 1e-5)
        try parity({ _ in GlobalAveragePooling2D("gap") }, input: [2, 3, 5, 512], tol: 1e-5)
        try parity({ _ in GlobalAveragePooling2D("gap") }, input: [1, 7, 7, 3], tol: 1e-5)
    }

    func testBatchNormalization() throws {
        for shape in [[2, 5, 3, 64], [1, 3, 3, 512], [3, 7, 5, 3], [9, 3]] {
            try parity({ d in try BatchNormalization("bn", channels: shape.last!, on: d) }, input: shape, training: true)
            // Inference mode: the moving statistics, gamma and beta still training.
            try parity({ d in
                let bn = try BatchNormalization("bn", channels: shape.last!, on: d)
                bn.frozenStatistics = true
                return bn
            }, input: shape, training: true)
        }
        // Large row counts exercise the multi-group reductions.
        try parity({ d in try BatchNormalization("bn", channels: 3, on: d) }, input: [4, 61, 67, 3], training: true)
    }

    func testElementwiseLayers() throws {
        try parity({ _ in try Dropout("dropout", rate: 0.5, seed: 7) }, input: [3, 513], tol: 1e-6)
        try parity({ _ in try Dropout("dropout", rate: 0.2, seed: 8) }, input: [1, 7, 9, 64], tol: 1e-6)
        try parity({ _ in ReLU("relu") }, input: [2, 5, 7, 3], tol: 0)
        try parity({ _ in Flatten() }, input: [2, 3, 3, 512], tol: 0)
    }

    func testLossesAndSoftmax() throws {
        for (kind, rows, classes) in [(LossKind.softmaxCrossEntropy, 5, 10), (.softmaxCrossEntropy, 1, 3),
                                      (.softmaxCrossEntropy, 33, 1000), (.sigmoidBinaryCrossEntropy, 7, 1)] {
            var out: [(Float, [Float])] = []
            let z = randomArray(rows * classes, seed: 3, range: -8...8)
            let labels = (0..<rows).map { Float(kind == .softmaxCrossEntropy ? ($0 * 7) % classes : $0 % 2) }
            for d in [cpuDevice as Device, openclDevice] {
                let r = try Loss(kind).compute(logits: Tensor(z, shape: [rows, classes], on: d),
                                               labels: Tensor(labels, shape: kind == .softmaxCrossEntropy ? [rows] : [rows, 1], on: d))
                out.append((r.loss, r.gradient.toArray()))
            }
            XCTAssertEqual(out[0].0, out[1].0, accuracy: 1e-5 * max(1, abs(out[0].0)), "\(kind) loss")
            assertClose(out[1].1, out[0].1, tol: 1e-5, "\(kind) \(rows)x\(classes) gradient")
        }
        let z = randomArray(4 * 1000, seed: 4, range: -10...10)
        var probs: [[Float]] = []
        for d in [cpuDevice as Device, openclDevice] {
            let x = try Tensor(z, shape: [4, 1000], on: d), y = try Tensor(zeros: [4, 1000], on: d)
            d.softmax(x.buffer, y.buffer, rows: 4, classes: 1000)
            probs.append(y.toArray())
        }
        assertClose(probs[1], probs[0], tol: 1e-5, "softmax")
    }

    /// The class-weighted losses (Keras' class_weight) on both devices.
    func testClassWeightedLosses() throws {
        for (kind, rows, classes) in [(LossKind.softmaxCrossEntropy, 9, 4), (.softmaxCrossEntropy, 33, 1000), (.sigmoidBinaryCrossEntropy, 7, 1)] {
            var out: [(Float, [Float])] = []
            let z = randomArray(rows * classes, seed: 5, range: -8...8)
            let labels = (0..<rows).map { Float(kind == .softmaxCrossEntropy ? ($0 * 7) % classes : $0 % 2) }
            let weights = (0..<max(classes, 2)).map { Float($0 % 5) * 0.75 + 0.2 }
            for d in [cpuDevice as Device, openclDevice] {
                let r = try Loss(kind, classWeights: weights).compute(logits: Tensor(z, shape: [rows, classes], on: d),
                                                                      labels: Tensor(labels, shape: kind == .softmaxCrossEntropy ? [rows] : [rows, 1], on: d))
                out.append((r.loss, r.gradient.toArray()))
            }
            XCTAssertEqual(out[0].0, out[1].0, accuracy: 1e-5 * max(1, abs(out[0].0)), "\(kind) weighted loss")
            assertClose(out[1].1, out[0].1, tol: 1e-5, "\(kind) \(rows)x\(classes) weighted gradient")
        }
    }

    func testOptimizers() throws {
        let n = 1031
        let p0 = randomArray(n, seed: 5)
        let optimizers: [(String, () -> Optimizer)] = [
            ("sgd", { SGD(learningRate: 0.1) }),
            ("sgd momentum", { SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4) }),
            ("sgd nesterov", { SGD(learningRate: 0.05, momentum: 0.9, nesterov: true) }),
            ("adam", { Adam(learningRate: 1e-3, weightDecay: 1e-4) }),
            ("rmsprop", { RMSprop(learningRate: 1e-3) }),
        ]
        for (name, make) in optimizers {
            var finals: [[Float]] = []
            for d in [cpuDevice as Device, openclDevice] {
                let p = Parameter(name: "w", value: try Tensor(p0, shape: [n], on: d))
                let opt = make()
                for step in 0..<4 {
                    try p.setGradientForTesting(Tensor(randomArray(n, seed: 50 + UInt64(step)), shape: [n], on: d))
                    try opt.update([p])
                }
                finals.append(p.value.toArray())
            }
            assertClose(finals[1], finals[0], tol: 1e-5, name)
        }
    }

    func testBufferPrimitives() throws {
        let v = randomArray(1000, seed: 6)
        var out: [[Float]] = []
        for d in [cpuDevice as Device, openclDevice] {
            let a = try Tensor(v, shape: [1000], on: d), b = try Tensor(zeros: [1000], on: d)
            d.copy(a.buffer, srcOffset: 10, to: b.buffer, dstOffset: 3, count: 900)
            d.scale(b.buffer, b.buffer, count: 1000, by: -2)
            d.axpy(alpha: 0.5, a.buffer, b.buffer, count: 999)
            d.fill(b.buffer, value: 7, offset: 990, count: 5)
            out.append(b.toArray())
        }
        assertClose(out[1], out[0], tol: 1e-6, "copy/scale/axpy/fill")
        XCTAssertEqual(out[0][990], 7); XCTAssertEqual(out[0][3], -2 * v[10] + 0.5 * v[3], accuracy: 1e-6)
    }

    func testGemmTransposes() throws {
        let (m, n, k) = (37, 29, 53)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomArray(m * k, seed: 1), b = randomArray(k * n, seed: 2), c0 = randomArray(m * n, seed: 3)
            var results: [[Float]] = []
            for d in [cpuDevice as Device, openclDevice] {
                let ta_ = try Tensor(a, shape: [m * k], on: d), tb_ = try Tensor(b, shape: [k * n], on: d)
                let tc = try Tensor(c0, shape: [m * n], on: d)
                d.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1.5, a: ta_.buffer, aOffset: 0, lda: ta ? m : k,
                       b: tb_.buffer, bOffset: 0, ldb: tb ? k : n, beta: 0.5, c: tc.buffer, cOffset: 0, ldc: n)
                results.append(tc.toArray())
            }
            // Independent reference in Double.
            var ref = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n {
                var s = 0.0
                for l in 0..<k { s += Double(ta ? a[l * m + i] : a[i * k + l]) * Double(tb ? b[j * k + l] : b[l * n + j]) }
                ref[i * n + j] = Float(1.5 * s + 0.5 * Double(c0[i * n + j]))
            } }
            assertClose(results[0], ref, tol: 1e-5, "cpu gemm ta=\(ta) tb=\(tb)")
            assertClose(results[1], ref, tol: 1e-4, "opencl gemm ta=\(ta) tb=\(tb)")
        }
    }
}

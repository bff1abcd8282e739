import XCTest
import VGGTL

/// Finite-difference checks of every layer's backward on the CPU backend. The scalar checked is
/// L = sum(forward(x) * r) for a fixed random r, so dL/dy = r; central differences in float32
/// with a step far above rounding and far below the curvature of the smooth ops.
final class GradientCheckTests: VGGTLTestCase {
    let h: Float = 5e-3

    /// Checks dx and every parameter gradient of `layer` on input shape `shape`.
    /// `beforeForward` restores state a forward changes (the dropout step counter).
    func check(_ layer: Layer, input shape: [Int], training: Bool = true, seed: UInt64 = 1,
               samples: Int = 60, outputHasKinks: Bool = false, on d: Device = cpuDevice, beforeForward: () -> Void = {},
               file: StaticString = #filePath, line: UInt = #line) throws {
        try check(Graph([layer]), name: layer.name, input: shape, training: training, seed: seed, samples: samples,
                  outputHasKinks: outputHasKinks, on: d, beforeForward: beforeForward, file: file, line: line)
    }

    /// The same for a whole network: dL/d(input) and every trainable parameter's gradient.
    func check(_ net: Graph, name: String, input shape: [Int], training: Bool = true, seed: UInt64 = 1,
               samples: Int = 60, outputHasKinks: Bool = false, on d: Device = cpuDevice, beforeForward: () -> Void = {},
               file: StaticString = #filePath, line: UInt = #line) throws {
        net.computesInputGradient = true
        let xValues = awayFromZero(shape.reduce(1, *), seed: seed)
        let x = try Tensor(xValues, shape: shape, on: d)
        let outShape = try net.outputShape(shape)
        let r = try Tensor(randomArray(outShape.reduce(1, *), seed: seed + 7), shape: outShape, on: d)
        let rValues = r.toArray()

        // Where a step moves a ReLU output across zero the function has a kink inside the
        // step and central differences are meaningless; such samples are skipped (and counted).
        var pattern: [Bool] = []
        func loss() throws -> Double {
            beforeForward()
            let y = try net.forward(x, StepContext(training: training)).toArray()
            pattern = y.map { $0 > 0 }
            return zip(y, rValues).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = try loss()
        let basePattern = pattern
        var checked = 0, skipped = 0
        beforeForward()
        let y = try net.forward(x, StepContext(training: training))
        XCTAssertEqual(y.shape, outShape, "\(name): output shape", file: file, line: line)
        try net.backward(r)
        let dx = net.inputGradient!.toArray()
        let paramGrads = net.parameters.map { $0.grad?.toArray() ?? [] }

        func compare(_ what: String, analytic: [Float], values: Tensor) throws {
            var base = values.toArray()
            var g = SeededGenerator(seed: seed + 99)
            let picks = base.count <= samples ? Array(base.indices) : (0..<samples).map { _ in Int(g.next() % UInt64(base.count)) }
            for i in picks {
                let v = base[i]
                base[i] = v + h; try upload(base, values); let lp = try loss(); let pp = pattern
                base[i] = v - h; try upload(base, values); let lm = try loss(); let pm = pattern
                base[i] = v; try upload(base, values)
                if outputHasKinks, pp != basePattern || pm != basePattern { skipped += 1; continue }
                checked += 1
                let numeric = Float((lp - lm) / Double(2 * h))
                let err = abs(numeric - analytic[i])
                XCTAssertLessThanOrEqual(err, 2e-3 + 1e-2 * abs(numeric),
                                         "\(name) d/d\(what)[\(i)]: analytic \(analytic[i]) numeric \(numeric)", file: file, line: line)
            }
        }
        try compare("x", analytic: dx, values: x)
        for (p, grad) in zip(net.parameters, paramGrads) where p.trainable {
            try compare(p.name, analytic: grad, values: p.value)
        }
        XCTAssertGreaterThanOrEqual(checked, 4 * (checked + skipped) / 5, "\(name): too many samples at kinks", file: file, line: line)
    }

    func upload(_ values: [Float], _ t: Tensor) throws {
        t.upload(values)
    }

    func testConv2DKernelSizesStridesPadding() throws {
        var rng = SeededGenerator(seed: 3)
        let cases: [(k: Int, s: Int, p: Padding, act: Activation, shape: [Int], filters: Int)] = [
            (1, 1, .same, .linear, [2, 5, 4, 3], 4),
            (3, 1, .same, .relu, [2, 6, 5, 3], 4),
            (3, 2, .valid, .linear, [1, 7, 7, 2], 3),
            (3, 2, .same, .linear, [2, 6, 5, 3], 2),
            (5, 1, .same, .linear, [1, 6, 7, 2], 3),
            (5, 2, .valid, .relu, [1, 9, 8, 2], 2),
            (7, 1, .valid, .linear, [1, 9, 8, 2], 2),
            (7, 2, .same, .linear, [2, 7, 6, 1], 2),
            (1, 2, .valid, .linear, [1, 5, 5, 3], 2),
        ]
        for c in cases {
            let conv = try Conv2D("conv_k\(c.k)_s\(c.s)_\(c.p)", inChannels: c.shape[3], filters: c.filters, kernelSize: (c.k, c.k),
                                  strides: (c.s, c.s), padding: c.p, activation: c.act, on: cpuDevice, rng: &rng)
            try check(conv, input: c.shape, samples: 40, outputHasKinks: c.act == .relu)
        }
    }

    /// ResNet50's and InceptionV3's convolutions: 7x7 stride 2, 1x1 stride 2, 1x7/7x1, 1x3/3x1,
    /// PyTorch's symmetric padding on even sizes with stride 2 (torchvision's v1.5 3x3) against
    /// TensorFlow's 'same' there (more padding bottom/right), explicit asymmetric padding.
    func testConv2DResNetAndInceptionGeometries() throws {
        var rng = SeededGenerator(seed: 13)
        let cases: [(k: (Int, Int), s: Int, p: Padding, shape: [Int], filters: Int)] = [
            ((7, 7), 2, .valid, [1, 12, 11, 3], 2),
            ((7, 7), 2, .symmetric(3), [1, 8, 9, 2], 2),
            ((1, 1), 2, .valid, [2, 6, 5, 3], 4),
            ((1, 7), 1, .same, [1, 4, 9, 3], 2),
            ((7, 1), 1, .same, [1, 9, 4, 3], 2),
            ((1, 3), 1, .same, [2, 3, 5, 2], 3),
            ((3, 1), 1, .same, [2, 5, 3, 2], 3),
            ((3, 3), 2, .symmetric(1), [1, 8, 6, 2], 3),
            ((3, 3), 2, .same, [1, 8, 6, 2], 3),
            ((3, 3), 1, .explicit(top: 0, bottom: 2, left: 1, right: 0), [1, 5, 6, 2], 2),
            ((5, 5), 1, .same, [1, 6, 6, 3], 2),
        ]
        for c in cases {
            let conv = try Conv2D("conv_\(c.k.0)x\(c.k.1)_s\(c.s)_\(c.p)", inChannels: c.shape[3], filters: c.filters, kernelSize: c.k,
                                  strides: (c.s, c.s), padding: c.p, activation: .linear, useBias: c.s == 1, on: cpuDevice, rng: &rng)
            try check(conv, input: c.shape, samples: 40)
        }
        // Output sizes as TensorFlow and PyTorch give them.
        let g = try WindowGeometry(batch: 1, inH: 56, inW: 56, inC: 1, kernel: (3, 3), stride: (2, 2), padding: .same)
        XCTAssertEqual([g.outH, g.padTop, g.padBottom], [28, 0, 1])
        let t = try WindowGeometry(batch: 1, inH: 56, inW: 56, inC: 1, kernel: (3, 3), stride: (2, 2), padding: .symmetric(1))
        XCTAssertEqual([t.outH, t.padTop, t.padBottom], [28, 1, 1])
        XCTAssertThrowsError(try WindowGeometry(batch: 1, inH: 4, inW: 4, inC: 1, kernel: (3, 3), stride: (1, 1), padding: .symmetric(3)))
    }

    func testConv2DTiledEqualsUntiled() throws {
        // A tiny tile forces many im2col tiles, including a partial last one, through every pass
        // of the device-generic path.
        let device = try CPUDevice(options: .init(convolution: .im2colWholeTile, im2colTileFloats: 7 * 27))
        var rng = SeededGenerator(seed: 4)
        let conv = try Conv2D("tiled", inChannels: 3, filters: 4, activation: .relu, on: device, rng: &rng)
        XCTAssertEqual(try device.convolutionPlan(WindowGeometry(batch: 2, inH: 5, inW: 6, inC: 3, kernel: (3, 3), stride: (1, 1),
                                                                padding: .same, outC: 4)).forwardAlgorithm, "im2col-gemm(tile 7 rows)")
        try check(conv, input: [2, 5, 6, 3], samples: 40, outputHasKinks: true, on: device)
    }

    func testDense() throws {
        var rng = SeededGenerator(seed: 5)
        try check(Dense("fc", inputs: 7, units: 5, on: cpuDevice, rng: &rng), input: [3, 7])
        try check(Dense("fc_relu", inputs: 6, units: 4, activation: .relu, on: cpuDevice, rng: &rng), input: [1, 6], outputHasKinks: true)
    }

    func testPooling() throws {
        try check(Pool2D("max2", .max), input: [2, 6, 5, 3])
        try check(Pool2D("max3s2", .max, poolSize: (3, 3), strides: (2, 2)), input: [1, 7, 7, 2])
        try check(Pool2D("max3s2same", .max, poolSize: (3, 3), strides: (2, 2), padding: .same), input: [1, 6, 5, 2])
        try check(Pool2D("avg2", .average), input: [2, 5, 4, 3])
        try check(Pool2D("avg3s2same", .average, poolSize: (3, 3), strides: (2, 2), padding: .same), input: [1, 7, 6, 2])
        try check(GlobalAveragePooling2D("gap"), input: [2, 3, 5, 4])
    }

    /// 3x3 stride-2 'valid' max pooling (ResNet50, InceptionV3), 3x3 stride-1 'same' average
    /// pooling without (Keras) and with (PyTorch count_include_pad) the padding in the count.
    func testPoolingResNetAndInception() throws {
        try check(Pool2D("max3s2valid", .max, poolSize: (3, 3), strides: (2, 2)), input: [2, 9, 8, 3])
        try check(Pool2D("avg3s1same", .average, poolSize: (3, 3), strides: (1, 1), padding: .same), input: [2, 5, 6, 3])
        try check(Pool2D("avg3s1pad1_count", .average, poolSize: (3, 3), strides: (1, 1), padding: .symmetric(1), countPadding: true),
                  input: [2, 5, 6, 3])
        // The two averages differ only at the border: a corner averages 4 pixels or 4/9 of them.
        let x = try Tensor([Float](repeating: 1, count: 9), shape: [1, 3, 3, 1], on: cpuDevice)
        let keras = try Pool2D("k", .average, poolSize: (3, 3), strides: (1, 1), padding: .same).forward(x, .inference).toArray()
        let torch = try Pool2D("t", .average, poolSize: (3, 3), strides: (1, 1), padding: .symmetric(1), countPadding: true)
            .forward(x, .inference).toArray()
        XCTAssertEqual(keras, [Float](repeating: 1, count: 9))
        XCTAssertEqual(torch[0], 4 / 9, accuracy: 1e-7); XCTAssertEqual(torch[1], 6 / 9, accuracy: 1e-7); XCTAssertEqual(torch[4], 1)
    }

    func testZeroPadding() throws {
        try check(ZeroPadding2D("pad", top: 1, bottom: 2, left: 3, right: 0), input: [2, 3, 4, 2])
        let y = try ZeroPadding2D("pad1", 1).forward(Tensor([1, 2, 3, 4], shape: [1, 2, 2, 1], on: cpuDevice), .inference).toArray()
        XCTAssertEqual(y, [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0])
    }

    /// InceptionV3's BatchNorm without gamma (scale=False), and the epsilons of Keras (1e-3,
    /// ResNet50 1.001e-5) and torchvision (1e-5).
    func testBatchNormalizationWithoutGammaAndEpsilons() throws {
        for eps: Float in [1e-3, 1.001e-5, 1e-5] {
            let bn = try BatchNormalization("bn_noscale", channels: 3, epsilon: eps, scale: false, on: cpuDevice)
            XCTAssertEqual(bn.weights.map(\.name), ["bn_noscale/beta", "bn_noscale/moving_mean", "bn_noscale/moving_variance"])
            try check(bn, input: [4, 3, 2, 3], training: true)
            let frozenStatistics = try BatchNormalization("bn_noscale_infer", channels: 2, epsilon: eps, scale: false, on: cpuDevice)
            frozenStatistics.frozenStatistics = true
            try check(frozenStatistics, input: [3, 2, 2], training: true)
        }
    }

    /// Add and Concatenate inside networks: a tensor read by several layers (its gradient is the
    /// sum), Add passing dy to both inputs, ReLUs writing into a Concatenate's channels (and
    /// taking their gradient as a strided slice), a nested Concatenate, a producer that is copied.
    func testAddAndConcatenateInNetworks() throws {
        var rng = SeededGenerator(seed: 21)
        let residual = Graph()
        let c1 = residual.add(try Conv2D("c1", inChannels: 3, filters: 3, kernelSize: (1, 1), activation: .linear, on: cpuDevice, rng: &rng), residual.input)
        let a1 = residual.add(Add("add1"), residual.input, c1)
        let c2 = residual.add(try Conv2D("c2", inChannels: 3, filters: 3, activation: .linear, on: cpuDevice, rng: &rng), a1)
        residual.add(Add("add2"), c2, a1, residual.input)
        try check(residual, name: "residual", input: [2, 4, 5, 3])

        let inception = Graph()
        let r1 = inception.add(ReLU("r1"), inception.input)
        let r2 = inception.add(ReLU("r2"), inception.input)
        let conv = inception.add(try Conv2D("conv", inChannels: 3, filters: 2, activation: .linear, on: cpuDevice, rng: &rng), inception.input)
        let inner = inception.add(Concatenate("inner"), r2, conv)
        let pool = inception.add(Pool2D("pool", .average, poolSize: (3, 3), strides: (1, 1), padding: .same), inception.input)
        let outer = inception.add(Concatenate("outer"), r1, inner, pool)
        inception.add(try Conv2D("mix", inChannels: 11, filters: 4, kernelSize: (1, 1), activation: .linear, on: cpuDevice, rng: &rng), outer)
        try check(inception, name: "inception", input: [2, 3, 4, 3])
        XCTAssertEqual(try inception.outputShape([2, 3, 4, 3], of: outer), [2, 3, 4, 11])
    }

    func testBatchNormalization() throws {
        let train = try BatchNormalization("bn", channels: 3, on: cpuDevice)
        try check(train, input: [4, 3, 2, 3], training: true)
        // Inference mode (moving statistics) with gamma and beta training, as when fine-tuning.
        let infer = try BatchNormalization("bn_infer", channels: 4, on: cpuDevice)
        infer.frozenStatistics = true
        try check(infer, input: [2, 3, 4], training: true)
        // Frozen BN runs in inference mode even while training.
        let frozen = try BatchNormalization("bn_frozen", channels: 2, on: cpuDevice)
        frozen.trainable = false
        try check(frozen, input: [3, 2, 2], training: true)
    }

    func testDropoutReLUFlatten() throws {
        let drop = try Dropout("dropout", rate: 0.5, seed: 42)
        try check(drop, input: [4, 10], beforeForward: { drop.step = 0 })
        try check(ReLU("relu"), input: [3, 8])
        try check(Flatten(), input: [2, 3, 2, 2])
    }

    func testLosses() throws {
        let d = cpuDevice
        for (kind, classes) in [(LossKind.softmaxCrossEntropy, 5), (.sigmoidBinaryCrossEntropy, 1)] {
            let rows = 4
            let logits = try Tensor(randomArray(rows * classes, seed: 11, range: -3...3), shape: [rows, classes], on: d)
            let labelValues: [Float] = kind == .softmaxCrossEntropy ? [0, 4, 2, 2] : [0, 1, 1, 0]
            let labels = try Tensor(labelValues, shape: kind == .softmaxCrossEntropy ? [rows] : [rows, 1], on: d)
            let loss = Loss(kind)
            let analytic = try loss.compute(logits: logits, labels: labels).gradient.toArray()
            var z = logits.toArray()
            for i in z.indices {
                let v = z[i]
                z[i] = v + 1e-2; try upload(z, logits); let lp = try loss.compute(logits: logits, labels: labels).loss
                z[i] = v - 1e-2; try upload(z, logits); let lm = try loss.compute(logits: logits, labels: labels).loss
                z[i] = v; try upload(z, logits)
                XCTAssertEqual((lp - lm) / 2e-2, analytic[i], accuracy: 2e-3, "\(kind) dlogits[\(i)]")
            }
        }
    }

    /// Keras' class_weight: the gradient of the weighted loss by central differences, and the
    /// loss itself as the weighted mean written out by hand.
    func testClassWeightedLosses() throws {
        let d = cpuDevice
        for (kind, classes, weights) in [(LossKind.softmaxCrossEntropy, 5, [Float](arrayLiteral: 0.5, 2, 1, 3, 0.25)),
                                         (.sigmoidBinaryCrossEntropy, 1, [0.6, 4])] {
            let rows = 4
            let logits = try Tensor(randomArray(rows * classes, seed: 12, range: -3...3), shape: [rows, classes], on: d)
            let labelValues: [Float] = kind == .softmaxCrossEntropy ? [0, 4, 3, 3] : [0, 1, 1, 0]
            let labels = try Tensor(labelValues, shape: kind == .softmaxCrossEntropy ? [rows] : [rows, 1], on: d)
            let loss = Loss(kind, classWeights: weights)
            let (value, gradient) = try loss.compute(logits: logits, labels: labels)
            let analytic = gradient.toArray()
            let unweighted = try Loss(kind).compute(logits: logits, labels: labels)
            XCTAssertNotEqual(value, unweighted.loss, "\(kind): the weights change the loss")
            // Per-sample unweighted losses: the weighted loss is their weighted mean over the batch.
            var z = logits.toArray()
            var expected = 0.0
            for r in 0..<rows {
                let row = z[(r * classes)..<((r + 1) * classes)].map(Double.init), y = Int(labelValues[r])
                let l = classes == 1 ? max(row[0], 0) - row[0] * Double(y) + log1p(exp(-abs(row[0])))
                    : log(row.map(exp).reduce(0, +)) - row[y]
                expected += Double(weights[y]) * l / Double(rows)
            }
            XCTAssertEqual(Double(value), expected, accuracy: 1e-5, "\(kind) weighted loss")
            for i in z.indices {
                let v = z[i]
                z[i] = v + 1e-2; try upload(z, logits); let lp = try loss.compute(logits: logits, labels: labels).loss
                z[i] = v - 1e-2; try upload(z, logits); let lm = try loss.compute(logits: logits, labels: labels).loss
                z[i] = v; try upload(z, logits)
                XCTAssertEqual((lp - lm) / 2e-2, analytic[i], accuracy: 4e-3, "\(kind) weighted dlogits[\(i)]")
            }
        }
    }

    func testLossValuesMatchDefinitions() throws {
        let d = cpuDevice
        let z: [Float] = [2, -1, 0.5, 0, 0, 0]
        let ce = try Loss(.softmaxCrossEntropy).compute(logits: Tensor(z, shape: [2, 3], on: d), labels: Tensor([0, 2], shape: [2], on: d)).loss
        let expected = (-log(exp(2.0) / (exp(2.0) + exp(-1.0) + exp(0.5))) - log(1.0 / 3)) / 2
        XCTAssertEqual(Double(ce), expected, accuracy: 1e-6)
        let bce = try Loss(.sigmoidBinaryCrossEntropy).compute(logits: Tensor([3, -2], shape: [2, 1], on: d), labels: Tensor([1, 1], shape: [2, 1], on: d)).loss
        let sig = { (x: Double) in 1 / (1 + exp(-x)) }
        XCTAssertEqual(Double(bce), (-log(sig(3)) - log(sig(-2))) / 2, accuracy: 1e-6)
    }
}

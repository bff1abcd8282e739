import XCTest
import VGGTL

/// Finite-difference checks of the ops the newer backbones need (MobileNetV2, EfficientNetB0,
/// ConvNeXt-Tiny), and their values against definitions written out here.
extension GradientCheckTests {
    /// The depthwise geometries: 3x3, 5x5, 7x7; stride 1 and 2; TensorFlow's 'same' (asymmetric at
    /// stride 2 on even sizes), torch's symmetric padding, 'valid'; odd and even sizes, 5 channels.
    static var depthwiseCases: [(k: Int, s: Int, p: Padding, shape: [Int])] { [
        (3, 1, .same, [2, 7, 9, 5]), (3, 2, .same, [2, 7, 9, 5]), (3, 2, .same, [2, 8, 6, 5]),
        (3, 2, .symmetric(1), [2, 8, 6, 5]), (3, 1, .valid, [1, 7, 9, 5]),
        (5, 1, .same, [2, 7, 9, 5]), (5, 2, .same, [2, 8, 10, 5]), (5, 2, .symmetric(2), [1, 7, 9, 5]),
        (7, 1, .same, [2, 7, 9, 5]), (7, 2, .same, [1, 8, 9, 5]), (7, 1, .symmetric(3), [1, 7, 9, 5]),
        (3, 1, .explicit(top: 0, bottom: 2, left: 1, right: 0), [1, 5, 6, 3]),
    ] }

    func testDepthwiseConv2D() throws {
        var rng = SeededGenerator(seed: 31)
        for c in Self.depthwiseCases {
            let dw = try DepthwiseConv2D("dw_k\(c.k)_s\(c.s)_\(c.p)", channels: c.shape[3], kernelSize: (c.k, c.k), strides: (c.s, c.s),
                                         padding: c.p, useBias: c.s == 1, on: cpuDevice, rng: &rng)
            if let bias = dw.bias { bias.value.upload(randomArray(bias.value.count, seed: 5)) }
            try check(dw, input: c.shape, samples: 30)
        }
    }

    /// The depthwise forward equals Conv2D (tested against Keras and PyTorch) with a kernel that
    /// is zero off the diagonal, padding rules included.
    func testDepthwiseConv2DMatchesDiagonalConv2D() throws {
        var rng = SeededGenerator(seed: 32)
        for c in Self.depthwiseCases {
            let ch = c.shape[3]
            let dw = try DepthwiseConv2D("dw", channels: ch, kernelSize: (c.k, c.k), strides: (c.s, c.s), padding: c.p,
                                         on: cpuDevice, rng: &rng)
            dw.bias!.value.upload(randomArray(ch, seed: 6))
            let conv = try Conv2D("conv", inChannels: ch, filters: ch, kernelSize: (c.k, c.k), strides: (c.s, c.s), padding: c.p,
                                  activation: .linear, on: cpuDevice, rng: &rng)
            let w = dw.kernel.value.toArray()
            var full = [Float](repeating: 0, count: c.k * c.k * ch * ch)
            for tap in 0..<(c.k * c.k) { for j in 0..<ch { full[(tap * ch + j) * ch + j] = w[tap * ch + j] } }
            conv.kernel.value.upload(full)
            conv.bias!.value.upload(dw.bias!.value.toArray())
            let x = try Tensor(randomArray(c.shape.reduce(1, *), seed: 7), shape: c.shape, on: cpuDevice)
            let a = try dw.forward(x, .inference), b = try conv.forward(x, .inference)
            XCTAssertEqual(a.shape, b.shape, "\(c)")
            assertClose(a.toArray(), b.toArray(), tol: 1e-5, "depthwise vs diagonal conv \(c)")
        }
        // Keras' 'same' at stride 2 on an even size pads bottom/right only; torch's padding=1 both sides.
        let g = try WindowGeometry(batch: 1, inH: 8, inW: 6, inC: 1, kernel: (3, 3), stride: (2, 2), padding: .same)
        XCTAssertEqual([g.outH, g.outW, g.padTop, g.padBottom, g.padLeft, g.padRight], [4, 3, 0, 1, 0, 1])
        let torch = [Float]([1, 2, 3, 4, 5, 6, 7, 8, 9]), keras = DepthwiseConv2D.kerasKernel(fromTorch: torch + torch.map { -$0 },
                                                                                                channels: 2, kernelSize: (3, 3))
        XCTAssertEqual(Array(keras.prefix(6)), [1, -1, 2, -2, 3, -3], "torch [C, 1, kH, kW] -> Keras [kH, kW, C, 1]")
    }

    func testPointwiseActivations() throws {
        for f in PointwiseFunction.allCases {
            try check(PointwiseActivation("act_\(f)", f), input: [3, 2, 2, 5], outputHasKinks: f == .relu6)
        }
        // ReLU6 also past 6: the gradient passes only strictly between 0 and 6.
        let x: [Float] = [-2, -0.5, 0.5, 3, 5.9, 6.5, 9, 1e9]
        let relu6 = PointwiseActivation("relu6", .relu6)
        let t = try Tensor(x, shape: [1, 8], on: cpuDevice)
        XCTAssertEqual(try relu6.forward(t, .training).toArray(), [0, 0, 0.5, 3, 5.9, 6, 6, 6])
        let dx = try relu6.backward(Tensor([Float](repeating: 2, count: 8), shape: [1, 8], on: cpuDevice), inputGradient: true)!.toArray()
        XCTAssertEqual(dx, [0, 0, 2, 2, 2, 0, 0, 0])
        // The definitions in double: exact GELU with erf (not the tanh form), swish, sigmoid, at large |x| too.
        let v: [Float] = [-30, -5, -1.5, -0.3, 0, 0.2, 1, 2.5, 8, 30]
        let definitions: [PointwiseFunction: (Double) -> Double] = [
            .sigmoid: { 1 / (1 + exp(-$0)) },
            .swish: { $0 / (1 + exp(-$0)) },
            .gelu: { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) },
        ]
        for (f, def) in definitions {
            let y = try PointwiseActivation("a", f).forward(Tensor(v, shape: [1, v.count], on: cpuDevice), .inference).toArray()
            for (xi, yi) in zip(v, y) {
                XCTAssertEqual(Double(yi), def(Double(xi)), accuracy: 1e-6 * max(1, abs(def(Double(xi)))), "\(f)(\(xi))")
            }
        }
        // GELU's tanh approximation differs from the exact form by ~1e-4 near x = 1.5 (so this test would catch it).
        let g = try PointwiseActivation("g", .gelu).forward(Tensor([1.5], shape: [1, 1], on: cpuDevice), .inference).toArray()[0]
        let tanhForm = 0.5 * 1.5 * (1 + tanh((2 / Double.pi).squareRoot() * (1.5 + 0.044715 * 1.5 * 1.5 * 1.5)))
        XCTAssertGreaterThan(abs(Double(g) - tanhForm), 1e-5)
    }

    /// Conv2D and Dense with the newer activations (Keras' activation=): the pre-activation kept
    /// for the backward, dy overwritten or not.
    func testKernelLayersWithPointwiseActivations() throws {
        var rng = SeededGenerator(seed: 34)
        for act in [Activation.swish, .sigmoid, .relu6, .gelu] {
            let conv = try Conv2D("conv_\(act)", inChannels: 3, filters: 4, activation: act, on: cpuDevice, rng: &rng)
            try check(conv, input: [2, 4, 5, 3], samples: 30, outputHasKinks: act == .relu6)
            try check(Dense("fc_\(act)", inputs: 6, units: 5, activation: act, on: cpuDevice, rng: &rng), input: [3, 6],
                      outputHasKinks: act == .relu6)
        }
        // In a network whose dy stays alive (read by two layers): the derivative goes to scratch.
        let net = Graph()
        let a = net.add(try Conv2D("se_reduce", inChannels: 4, filters: 3, kernelSize: (1, 1), activation: .swish, on: cpuDevice, rng: &rng), net.input)
        let b = net.add(PointwiseActivation("b", .sigmoid), a)
        let c = net.add(PointwiseActivation("c", .gelu), a)
        net.add(Add("sum"), b, c, a)
        try check(net, name: "swish conv read three times", input: [2, 3, 3, 4])
        // The output is f(conv): sigmoid of a 1x1 convolution with known weights.
        let conv = try Conv2D("gate", inChannels: 1, filters: 1, kernelSize: (1, 1), activation: .sigmoid, on: cpuDevice, rng: &rng)
        conv.kernel.value.upload([2]); conv.bias!.value.upload([-1])
        let y = try conv.forward(Tensor([0, 0.5, 3], shape: [1, 1, 3, 1], on: cpuDevice), .inference).toArray()
        for (yi, xi) in zip(y, [0, 0.5, 3] as [Double]) { XCTAssertEqual(Double(yi), 1 / (1 + exp(-(2 * xi - 1))), accuracy: 1e-6) }
    }

    func testLayerNormalization() throws {
        for (eps, shape) in [(Float(1e-6), [2, 3, 4, 5]), (1e-3, [3, 7])] {
            let ln = try LayerNormalization("ln", channels: shape.last!, epsilon: eps, on: cpuDevice)
            ln.gamma.value.upload(randomArray(shape.last!, seed: 8, range: 0.5...1.5))
            ln.beta.value.upload(randomArray(shape.last!, seed: 9))
            try check(ln, input: shape)
            // Frozen gamma and beta: dx only.
            ln.trainable = false
            try check(ln, input: shape)
        }
        // Values: each row normalised with its own biased variance.
        let x: [Float] = [1, 2, 3, 4, -1, 0, 0, 5]
        let ln = try LayerNormalization("ln", channels: 4, epsilon: 1e-6, on: cpuDevice)
        let y = try ln.forward(Tensor(x, shape: [2, 4], on: cpuDevice), .inference).toArray()
        for r in 0..<2 {
            let row = x[(4 * r)..<(4 * r + 4)].map(Double.init)
            let m = row.reduce(0, +) / 4, v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 4
            for j in 0..<4 { XCTAssertEqual(Double(y[4 * r + j]), (row[j] - m) / (v + 1e-6).squareRoot(), accuracy: 1e-5) }
        }
    }

    /// Squeeze-and-excitation as Keras' EfficientNet builds it (pool, reshape, 1x1 swish, 1x1
    /// sigmoid, multiply): both of Multiply's gradients, one of them flowing back through the pool.
    func testSqueezeExcitationMultiply() throws {
        var rng = SeededGenerator(seed: 33)
        for factorsFirst in [false, true] {
            let se = Graph()
            let pooled = se.add(GlobalAveragePooling2D("se_squeeze"), se.input)
            let reshaped = se.add(Reshape("se_reshape", [1, 1, 6]), pooled)
            let reduce = se.add(try Conv2D("se_reduce", inChannels: 6, filters: 2, kernelSize: (1, 1), activation: .linear, on: cpuDevice, rng: &rng), reshaped)
            let swish = se.add(PointwiseActivation("se_swish", .swish), reduce)
            let expand = se.add(try Conv2D("se_expand", inChannels: 2, filters: 6, kernelSize: (1, 1), activation: .linear, on: cpuDevice, rng: &rng), swish)
            let gate = se.add(PointwiseActivation("se_sigmoid", .sigmoid), expand)
            if factorsFirst { se.add(Multiply("se_excite"), gate, se.input) } else { se.add(Multiply("se_excite"), se.input, gate) }
            try check(se, name: "se(factors first: \(factorsFirst))", input: [2, 3, 4, 6])
        }
        // [n, c] factors too, and the value: each image's channels scaled by its own factors.
        let m = Graph()
        let s = m.add(GlobalAveragePooling2D("gap"), m.input)
        m.add(Multiply("mul"), m.input, s)
        try check(m, name: "multiply [n, c]", input: [2, 2, 3, 4])
        let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [2, 2, 1, 2], on: cpuDevice)
        let y = try m.forward(x, .inference).toArray()
        // Per image, each channel times its mean over the pixels: (1 + 3) / 2 = 2, (2 + 4) / 2 = 3, then 6 and 7.
        let expected: [Float] = [2, 6, 6, 12, 30, 42, 42, 56]
        XCTAssertEqual(y, expected)
    }

    func testLayerScaleAndStochasticDepth() throws {
        let scale = try LayerScale("ls", channels: 5, on: cpuDevice)
        XCTAssertEqual(scale.gamma.value.toArray(), [Float](repeating: 1e-6, count: 5))
        scale.gamma.value.upload(randomArray(5, seed: 10))
        try check(scale, input: [2, 3, 3, 5])

        let drop = try StochasticDepth("drop_path", rate: 0.5, seed: 42)
        try check(drop, input: [6, 2, 3, 4], beforeForward: { drop.step = 0 })
        // Training: each sample's branch is all dropped or all scaled by 1 / (1 - rate), the
        // draws differ between steps and repeat for the same seed and step; inference: identity.
        let x = try Tensor([Float](repeating: 1, count: 64 * 3), shape: [64, 3], on: cpuDevice)
        var draws: [[Float]] = []
        for step in [0, 1, 0] as [UInt32] {
            drop.step = step
            let y = try drop.forward(x, .training).toArray()
            let perSample = (0..<64).map { y[3 * $0] }
            for n in 0..<64 { XCTAssertEqual(Array(y[(3 * n)..<(3 * n + 3)]), [Float](repeating: perSample[n], count: 3)) }
            XCTAssertTrue(perSample.allSatisfy { $0 == 0 || $0 == 2 })
            XCTAssertEqual(drop.lastFactors, perSample)
            let kept = perSample.filter { $0 > 0 }.count
            XCTAssertTrue((16...48).contains(kept), "kept \(kept) of 64 at rate 0.5")
            draws.append(perSample)
        }
        XCTAssertNotEqual(draws[0], draws[1]); XCTAssertEqual(draws[0], draws[2])
        XCTAssertEqual(try drop.forward(x, .inference).toArray(), x.toArray())
    }

    /// Keras' Rescaling (one or per-channel values) and Normalization (fixed mean and variance,
    /// max(sqrt(variance), 1e-7) as Keras divides).
    func testRescalingAndNormalization() throws {
        try check(try Rescaling("rescale", scale: 1 / 255.0, offset: -1), input: [2, 3, 2, 3])
        try check(try Rescaling("rescale_rgb", scale: [0.5, 2, -1], offset: [0.25, 0, 1]), input: [2, 2, 2, 3])
        let mean: [Float] = [0.485 * 255, 0.456 * 255, 0.406 * 255], variance: [Float] = [3409.976, 3262.6944, 0]
        try check(try Normalization("normalization", mean: mean, variance: [0.3, 2, 1.5], on: cpuDevice), input: [2, 2, 3, 3])
        // A zero variance divides by 1e-7, as Keras does.
        let norm = try Normalization("normalization", mean: [mean[0], mean[1], 0], variance: variance, on: cpuDevice)
        let x: [Float] = [200, 100, 1e-6, 0, 255, -3e-7]
        let y = try norm.forward(Tensor(x, shape: [1, 1, 2, 3], on: cpuDevice), .inference).toArray()
        for i in x.indices {
            let c = i % 3
            let expected = (Double(x[i]) - Double(c == 2 ? 0 : mean[c])) / max(Double(variance[c]).squareRoot(), 1e-7)
            XCTAssertEqual(Double(y[i]), expected, accuracy: 1e-5 * max(1, abs(expected)), "normalization[\(i)]")
        }
        let r = try Rescaling("r", scale: [1, 0.5, 0.25], offset: [-1]).forward(Tensor([2, 2, 2], shape: [1, 3], on: cpuDevice), .inference).toArray()
        XCTAssertEqual(r, [1, 0, -0.5])
        // A variance written after the layer was built (a weights file) is used.
        norm.variance.upload([4, 16, 1])
        let z = try norm.forward(Tensor([0.485 * 255 + 2, 0.456 * 255 + 8, 0], shape: [1, 3], on: cpuDevice), .inference).toArray()
        XCTAssertEqual(z[0], 1, accuracy: 1e-4); XCTAssertEqual(z[1], 2, accuracy: 1e-4); XCTAssertEqual(z[2], 0, accuracy: 1e-4)
    }
}

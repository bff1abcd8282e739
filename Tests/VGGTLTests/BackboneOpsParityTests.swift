import XCTest
import VGGTL

/// CPU vs OpenCL for the ops of the newer backbones, at odd shapes: forward, dx and every
/// parameter gradient (ParityTests.parity).
extension ParityTests {
    func testDepthwiseConv2D() throws {
        for c in GradientCheckTests.depthwiseCases {
            for channels in [5, 96] {
                let shape = [c.shape[0], c.shape[1], c.shape[2], channels]
                try parity({ d in
                    var rng = SeededGenerator(seed: 14)
                    let dw = try DepthwiseConv2D("dw_k\(c.k)s\(c.s)\(c.p)", channels: channels, kernelSize: (c.k, c.k), strides: (c.s, c.s),
                                                 padding: c.p, useBias: c.s == 1, on: d, rng: &rng)
                    if let bias = dw.bias { bias.value.upload(randomArray(channels, seed: 15)) }
                    return dw
                }, input: shape)
            }
        }
        // MobileNetV2-like and ConvNeXt-like sizes: many rows per kernel-gradient chunk.
        try parity({ d in
            var rng = SeededGenerator(seed: 16)
            return try DepthwiseConv2D("dw_mb", channels: 32, strides: (2, 2), on: d, rng: &rng)
        }, input: [3, 29, 31, 32])
        try parity({ d in
            var rng = SeededGenerator(seed: 17)
            return try DepthwiseConv2D("dw_cnx", channels: 24, kernelSize: (7, 7), padding: .symmetric(3), on: d, rng: &rng)
        }, input: [2, 15, 13, 24])
    }

    func testPointwiseActivations() throws {
        for f in PointwiseFunction.allCases {
            try parity({ _ in PointwiseActivation("act_\(f)", f) }, input: [2, 5, 7, 3], tol: 1e-5)
            // Large magnitudes (and ReLU6's clamp at 6).
            try parity({ _ in PointwiseActivation("act_\(f)", f) }, input: [1, 3, 5, 67], tol: 1e-5, seed: 99)
        }
        let v: [Float] = [-90, -20, -6.5, -1, 0, 1, 5.999, 6, 6.5, 20, 90]
        for f in PointwiseFunction.allCases {
            var out: [[Float]] = []
            for d in [cpuDevice as Device, openclDevice] {
                let x = try Tensor(v, shape: [v.count], on: d), y = try Tensor(zeros: [v.count], on: d), dx = try Tensor(zeros: [v.count], on: d)
                d.pointwise(f, x.buffer, y.buffer, count: v.count)
                d.pointwiseBackward(f, x.buffer, y.buffer, dx.buffer, count: v.count)
                out.append(y.toArray() + dx.toArray())
            }
            assertClose(out[1], out[0], tol: 1e-5, "\(f) at large |x|")
        }
    }

    /// Keras' squeeze-and-excitation convolutions (1x1 on [n, 1, 1, C], swish then sigmoid), a
    /// 3x3 with GELU, Dense with swish.
    func testKernelLayersWithPointwiseActivations() throws {
        for (act, shape, filters, k) in [(Activation.swish, [4, 1, 1, 96], 4, 1), (.sigmoid, [4, 1, 1, 4], 96, 1),
                                         (.gelu, [2, 7, 9, 16], 24, 3), (.relu6, [1, 9, 7, 5], 8, 3)] {
            try parity({ d in
                var rng = SeededGenerator(seed: 24)
                return try Conv2D("conv_\(act)", inChannels: shape[3], filters: filters, kernelSize: (k, k), activation: act, on: d, rng: &rng)
            }, input: shape)
        }
        try parity({ d in
            var rng = SeededGenerator(seed: 25)
            return try Dense("fc_swish", inputs: 37, units: 11, activation: .swish, on: d, rng: &rng)
        }, input: [5, 37])
    }

    func testLayerNormalization() throws {
        for (shape, eps) in [([2, 5, 7, 3], Float(1e-6)), ([1, 3, 5, 96], 1e-6), ([2, 7, 7, 768], 1e-6), ([37, 300], 1e-3)] {
            for trainable in [true, false] {
                try parity({ d in
                    let ln = try LayerNormalization("ln", channels: shape.last!, epsilon: eps, on: d)
                    ln.gamma.value.upload(randomArray(shape.last!, seed: 18, range: 0.5...1.5))
                    ln.beta.value.upload(randomArray(shape.last!, seed: 19))
                    ln.trainable = trainable
                    return ln
                }, input: shape)
            }
        }
    }

    func testChannelScalingLayers() throws {
        try parity({ d in
            let ls = try LayerScale("ls", channels: 96, on: d)
            ls.gamma.value.upload(randomArray(96, seed: 20))
            return ls
        }, input: [2, 7, 5, 96], tol: 1e-5)
        try parity({ d in try LayerScale("ls", channels: 3, on: d) }, input: [1, 61, 67, 3], tol: 1e-5)
        try parity({ _ in try StochasticDepth("drop_path", rate: 0.3, seed: 5) }, input: [9, 3, 5, 7], tol: 0)
        try parity({ _ in try Rescaling("rescale", scale: [0.5, 2, -1], offset: [0.25, 0, 1]) }, input: [2, 5, 7, 3], tol: 1e-6)
        try parity({ d in try Normalization("norm", mean: [0.4, 0.5, 0.6], variance: [0.05, 0.06, 0.07], on: d) }, input: [2, 5, 7, 3], tol: 1e-5)
        // Squeeze-and-excitation's multiply: both gradients, [n, 1, 1, c] and [n, c] factors.
        for (image, factors) in [([3, 7, 5, 40], [3, 1, 1, 40]), ([2, 9, 11, 3], [2, 3]), ([1, 31, 29, 16], [1, 1, 1, 16])] {
            var out: [[Float]] = []
            for d in [cpuDevice as Device, openclDevice] {
                let x = try Tensor(randomArray(image.reduce(1, *), seed: 21), shape: image, on: d)
                let s = try Tensor(randomArray(factors.reduce(1, *), seed: 22), shape: factors, on: d)
                let dy = try Tensor(randomArray(image.reduce(1, *), seed: 23), shape: image, on: d)
                let layer = Multiply("se_excite")
                let y = try Tensor(zeros: image, on: d), dx = try Tensor(zeros: image, on: d), ds = try Tensor(zeros: factors, on: d)
                _ = try layer.forward(inputs: [x, s], into: y, context: .training)
                try layer.backward(dy, GradientTargets(inputs: [dx, ds]), context: .training)
                out.append(y.toArray() + dx.toArray() + ds.toArray())
            }
            assertClose(out[1], out[0], tol: 1e-5, "multiply \(image) x \(factors)")
        }
    }
}

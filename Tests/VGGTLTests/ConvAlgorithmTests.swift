import XCTest
@testable import VGGTL
@testable import VGGTLTensors
@testable import VGGTLCPU
@testable import VGGTLNN

/// The CPU's convolution algorithms agree with each other: Winograd F(2x2,3x3) and F(4x4,3x3)
/// against im2col + GEMM (itself finite-difference checked in GradientCheckTests), forward with
/// bias and ReLU, backward-data and backward-filter, plus a finite-difference check of the
/// Winograd backward-data directly.
final class ConvAlgorithmTests: VGGTLTestCase {
    typealias ConvolutionAlgorithm = CPUDevice.ConvolutionAlgorithm

    func put(_ values: [Float], _ t: Tensor) { t.upload(values) }

    /// A CPU device whose plans use `algorithm` (and other options).
    func device(_ algorithm: ConvolutionAlgorithm, _ options: CPUDevice.Options = .init()) throws -> CPUDevice {
        var o = options
        o.convolution = algorithm
        return try CPUDevice(options: o)
    }

    /// Output, dx, dkernel, dbias of one Conv2D step under an algorithm.
    func step(_ algorithm: ConvolutionAlgorithm, shape: [Int], filters: Int, seed: UInt64,
              options: CPUDevice.Options = .init()) throws -> [[Float]] {
        let cpuDevice = try device(algorithm, options)
        var rng = SeededGenerator(seed: seed)
        let conv = try Conv2D("c", inChannels: shape[3], filters: filters, on: cpuDevice, rng: &rng)
        // A nonzero bias so the fused bias + ReLU epilogue is exercised.
        put(randomArray(filters, seed: seed + 3, range: -0.2...0.2), conv.bias!.value)
        let x = try Tensor(randomArray(shape.reduce(1, *), seed: seed + 1), shape: shape, on: cpuDevice)
        let y = try conv.forward(x, .training)
        if CPUWinograd.applies(try conv.geometry(shape)) {
            XCTAssertEqual(conv.currentPlan?.forwardAlgorithm.hasPrefix(algorithm == .im2col ? "im2col-gemm-per-thread" : "winograd"), true,
                           "\(algorithm): \(conv.currentPlan?.forwardAlgorithm ?? "no plan")")
        }
        let dy = try Tensor(randomArray(y.count, seed: seed + 2), shape: y.shape, on: cpuDevice)
        let dx = try conv.backward(dy, inputGradient: true)!
        return [y.toArray(), dx.toArray(), conv.kernel.grad!.toArray(), conv.bias!.grad!.toArray()]
    }

    func testWinogradMatchesIm2col() throws {
        let cases: [(shape: [Int], filters: Int)] = [
            ([2, 7, 9, 16], 8),       // sizes not multiples of the tile, batch 2
            ([1, 13, 11, 64], 64),
            ([2, 6, 5, 32], 48),      // C != K
            ([1, 5, 7, 512], 512),    // block5 channel counts
            ([3, 4, 4, 8], 24),
        ]
        for c in cases {
            let ref = try step(.im2col, shape: c.shape, filters: c.filters, seed: 21)
            for (alg, tol) in [(ConvolutionAlgorithm.winograd2, Float(1e-5)), (.winograd4, Float(1e-4))] {
                let got = try step(alg, shape: c.shape, filters: c.filters, seed: 21)
                for (i, label) in ["output", "dx", "dkernel", "dbias"].enumerated() {
                    let e = relativeError(got[i], ref[i])
                    XCTAssertLessThanOrEqual(e, tol, "\(alg) \(c.shape)->\(c.filters) \(label): relative error \(e)")
                    if i < 2 { print("conv \(alg) \(c.shape)->\(c.filters) \(label): max rel error \(e)") }
                }
            }
        }
    }

    /// The CPU's per-thread im2col tiles (fused bias + ReLU) against the device-generic im2col path,
    /// on geometries Winograd does not take.
    func testPerThreadIm2colMatchesGeneric() throws {
        let cases: [(shape: [Int], filters: Int, k: Int, s: Int, p: Padding)] = [
            ([2, 9, 11, 3], 16, 3, 1, .same),      // VGG's first layer
            ([1, 70, 65, 3], 8, 3, 1, .same),      // several tiles per thread
            ([2, 11, 9, 5], 8, 5, 2, .valid),
            ([3, 9, 10, 64], 5, 3, 2, .valid),
        ]
        for c in cases {
            func run(_ alg: ConvolutionAlgorithm) throws -> [[Float]] {
                let cpuDevice = try device(alg)
                var rng = SeededGenerator(seed: 4)
                let conv = try Conv2D("t", inChannels: c.shape[3], filters: c.filters, kernelSize: (c.k, c.k), strides: (c.s, c.s),
                                      padding: c.p, on: cpuDevice, rng: &rng)
                put(randomArray(c.filters, seed: 6, range: -0.2...0.2), conv.bias!.value)
                let x = try Tensor(randomArray(c.shape.reduce(1, *), seed: 7), shape: c.shape, on: cpuDevice)
                let y = try conv.forward(x, .training)
                let dy = try Tensor(randomArray(y.count, seed: 8), shape: y.shape, on: cpuDevice)
                let dx = try conv.backward(dy, inputGradient: true)!
                return [y.toArray(), dx.toArray(), conv.kernel.grad!.toArray(), conv.bias!.grad!.toArray()]
            }
            let ref = try run(.im2colWholeTile), got = try run(.im2col)
            for i in 0..<4 { assertClose(got[i], ref[i], tol: 1e-5, "per-thread im2col \(c.shape) tensor \(i)") }
        }
    }

    /// Many small chunks of tiles, split across threads, give the same answer as one chunk.
    func testWinogradChunking() throws {
        let ref = try step(.im2col, shape: [2, 11, 10, 16], filters: 16, seed: 5)
        let small = CPUDevice.Options(winogradChunkFloats: 1, winogradMinChunk: 5)  // 5 tiles per chunk
        for alg in [ConvolutionAlgorithm.winograd2, .winograd4] {
            let got = try step(alg, shape: [2, 11, 10, 16], filters: 16, seed: 5, options: small)
            for i in 0..<4 { assertClose(got[i], ref[i], tol: 1e-4, "\(alg) chunked tensor \(i)") }
        }
    }

    /// d/dx of L = sum(conv(x) * r) by central differences in float64 of the float32 forward.
    func testWinogradBackwardDataFiniteDifferences() throws {
        for alg in [ConvolutionAlgorithm.winograd2, .winograd4] {
            let cpuDevice = try device(alg)
            var rng = SeededGenerator(seed: 8)
            let conv = try Conv2D("fd", inChannels: 8, filters: 8, activation: .linear, on: cpuDevice, rng: &rng)
            let shape = [1, 6, 7, 8]
            var xv = randomArray(shape.reduce(1, *), seed: 9)
            let x = try Tensor(xv, shape: shape, on: cpuDevice)
            let r = try Tensor(randomArray(6 * 7 * 8, seed: 10), shape: [1, 6, 7, 8], on: cpuDevice)
            let rv = r.toArray()
            _ = try conv.forward(x, .training)
            let dx = try conv.backward(r, inputGradient: true)!.toArray()
            func loss() throws -> Double {
                put(xv, x)
                return zip(try conv.forward(x, .training).toArray(), rv).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            let h: Float = 1e-2
            for i in stride(from: 0, to: xv.count, by: 7) {
                let v = xv[i]
                xv[i] = v + h; let lp = try loss()
                xv[i] = v - h; let lm = try loss()
                xv[i] = v
                let numeric = Float((lp - lm) / Double(2 * h))
                XCTAssertEqual(dx[i], numeric, accuracy: 2e-3 + 1e-2 * abs(numeric), "\(alg) dx[\(i)]")
            }
        }
    }

    func testAlgorithmChoiceIsNamed() throws {
        let conv1 = try WindowGeometry(batch: 1, inH: 150, inW: 150, inC: 3, kernel: (3, 3), stride: (1, 1), padding: .same, outC: 64)
        XCTAssertTrue(try cpuDevice.convolutionPlan(conv1).forwardAlgorithm.hasPrefix("im2col-gemm-per-thread"))
        let conv2 = try WindowGeometry(batch: 1, inH: 150, inW: 150, inC: 64, kernel: (3, 3), stride: (1, 1), padding: .same, outC: 64)
        XCTAssertEqual(try cpuDevice.convolutionPlan(conv2).forwardAlgorithm, "winograd-F(4x4,3x3)")
        let block5 = try WindowGeometry(batch: 1, inH: 2, inW: 2, inC: 512, kernel: (3, 3), stride: (1, 1), padding: .same, outC: 512)
        XCTAssertEqual(try cpuDevice.convolutionPlan(block5).forwardAlgorithm, "winograd-F(2x2,3x3)")
        let strided = try WindowGeometry(batch: 1, inH: 16, inW: 16, inC: 64, kernel: (3, 3), stride: (2, 2), padding: .same, outC: 64)
        XCTAssertTrue(try cpuDevice.convolutionPlan(strided).forwardAlgorithm.hasPrefix("im2col"))
    }
}

import XCTest
@testable import VGGTL
@testable import VGGTLTensors
@testable import VGGTLCPU
@testable import VGGTLNN
@testable import VGGTLOpenCL
@testable import VGGTLCLI

/// Convolution plans: every device's plan against a naive direct convolution at odd geometries,
/// the algorithm names each pass reports, frozen kernels kept (and changes to them noticed),
/// workspace owned per device, and device options taking effect.
final class ConvolutionPlanTests: VGGTLTestCase {
    // MARK: - Naive reference (float64 accumulation)

    func naiveForward(_ g: WindowGeometry, x: [Float], w: [Float], bias: [Float], relu: Bool) -> [Float] {
        var y = [Float](repeating: 0, count: g.outCount)
        for n in 0..<g.batch { for oh in 0..<g.outH { for ow in 0..<g.outW { for k in 0..<g.outC {
            var s = Double(bias[k])
            for kh in 0..<g.kH { for kw in 0..<g.kW {
                let ih = oh * g.strideH - g.padTop + kh, iw = ow * g.strideW - g.padLeft + kw
                guard ih >= 0, ih < g.inH, iw >= 0, iw < g.inW else { continue }
                for c in 0..<g.inC {
                    s += Double(x[((n * g.inH + ih) * g.inW + iw) * g.inC + c]) * Double(w[((kh * g.kW + kw) * g.inC + c) * g.outC + k])
                }
            } }
            y[((n * g.outH + oh) * g.outW + ow) * g.outC + k] = Float(relu ? max(s, 0) : s)
        } } } }
        return y
    }

    /// dx, dw and db of sum(y * dy) for the linear convolution.
    func naiveBackward(_ g: WindowGeometry, x: [Float], w: [Float], dy: [Float]) -> (dx: [Float], dw: [Float], db: [Float]) {
        var dx = [Double](repeating: 0, count: g.inCount), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: g.outC)
        for n in 0..<g.batch { for oh in 0..<g.outH { for ow in 0..<g.outW { for k in 0..<g.outC {
            let d = Double(dy[((n * g.outH + oh) * g.outW + ow) * g.outC + k])
            db[k] += d
            for kh in 0..<g.kH { for kw in 0..<g.kW {
                let ih = oh * g.strideH - g.padTop + kh, iw = ow * g.strideW - g.padLeft + kw
                guard ih >= 0, ih < g.inH, iw >= 0, iw < g.inW else { continue }
                for c in 0..<g.inC {
                    let xi = ((n * g.inH + ih) * g.inW + iw) * g.inC + c, wi = ((kh * g.kW + kw) * g.inC + c) * g.outC + k
                    dx[xi] += d * Double(w[wi])
                    dw[wi] += d * Double(x[xi])
                }
            } }
        } } } }
        return (dx.map { Float($0) }, dw.map { Float($0) }, db.map { Float($0) })
    }

    func geometry(_ s: [Int], filters: Int, kernel: (Int, Int), stride: (Int, Int), _ p: Padding) throws -> WindowGeometry {
        try WindowGeometry(batch: s[0], inH: s[1], inW: s[2], inC: s[3], kernel: kernel, stride: stride, padding: p, outC: filters)
    }

    // MARK: - Correctness through the plan

    /// Forward (bias + ReLU), backward-data and backward-filter (+ bias gradient) of every plan
    /// against the naive loops, on the CPU under each algorithm option and on OpenCL (PoCL).
    func testOddGeometriesMatchNaiveConvolution() throws {
        let geometries = try [
            geometry([2, 7, 9, 3], filters: 5, kernel: (3, 3), stride: (2, 2), .same),     // stride 2, padding on one side only
            geometry([1, 8, 6, 4], filters: 6, kernel: (3, 3), stride: (1, 1), .valid),    // valid padding
            geometry([2, 5, 7, 6], filters: 4, kernel: (1, 1), stride: (1, 1), .same),     // 1x1: one GEMM
            geometry([1, 6, 5, 3], filters: 4, kernel: (1, 1), stride: (2, 2), .valid),    // 1x1 stride 2
            geometry([1, 9, 8, 2], filters: 3, kernel: (5, 5), stride: (1, 1), .same),     // 5x5
            geometry([2, 7, 6, 3], filters: 2, kernel: (1, 3), stride: (1, 1), .same),     // non-square kernel
            geometry([1, 6, 7, 2], filters: 3, kernel: (3, 1), stride: (2, 1), .valid),    // non-square kernel and stride
            geometry([2, 7, 9, 8], filters: 12, kernel: (3, 3), stride: (1, 1), .same),    // Winograd on the CPU
            geometry([1, 11, 13, 16], filters: 8, kernel: (3, 3), stride: (1, 1), .same),  // Winograd, several tiles
        ]
        let devices: [(String, Device)] = [
            ("cpu", cpuDevice),
            ("cpu im2colWholeTile (tiles of 50 floats)", try CPUDevice(options: .init(convolution: .im2colWholeTile, im2colTileFloats: 50))),
            ("cpu im2col", try CPUDevice(options: .init(convolution: .im2col))),
            ("cpu winograd2", try CPUDevice(options: .init(convolution: .winograd2))),
            ("cpu winograd4 (chunks of 5 tiles)", try CPUDevice(options: .init(convolution: .winograd4, winogradChunkFloats: 1, winogradMinChunk: 5))),
            ("opencl", openclDevice),
            ("opencl im2col (tiles of 50 floats)", try OpenCLDevice(index: 0, options: .init(im2colTileFloats: 50, convolution: .im2col))),
        ]
        for (i, g) in geometries.enumerated() {
            let seed = UInt64(10 * i)
            let x = randomArray(g.inCount, seed: seed), w = randomArray(g.kH * g.kW * g.inC * g.outC, seed: seed + 1)
            let b = randomArray(g.outC, seed: seed + 2, range: -0.3...0.3), dy = randomArray(g.outCount, seed: seed + 3)
            let refY = naiveForward(g, x: x, w: w, bias: b, relu: true)
            let ref = naiveBackward(g, x: x, w: w, dy: dy)
            for (label, d) in devices {
                let plan = try d.convolutionPlan(g)
                XCTAssertEqual(plan.geometry, g)
                let what = "\(label) \(g.inShape) k\(g.kH)x\(g.kW) s\(g.strideH)x\(g.strideW) -> \(g.outC) [\(plan.forwardAlgorithm) / \(plan.backwardDataAlgorithm) / \(plan.backwardFilterAlgorithm)]"
                let xt = try Tensor(x, shape: g.inShape, on: d), wt = try Tensor(w, shape: g.kernelShape, on: d)
                let bt = try Tensor(b, shape: [g.outC], on: d), dyt = try Tensor(dy, shape: g.outShape, on: d)
                let y = try Tensor(zeros: g.outShape, on: d), dx = try Tensor(zeros: g.inShape, on: d)
                let dw = try Tensor(zeros: g.kernelShape, on: d), db = try Tensor(zeros: [g.outC], on: d)
                // Non-zero garbage in the outputs: every pass must overwrite.
                for t in [y, dx, dw, db] { d.fill(t.buffer, value: 7, offset: 0, count: t.count) }
                for constant in [false, true, true] {
                    try plan.forward(x: xt, w: wt, bias: bt, relu: true, y: y, kernelIsConstant: constant)
                    assertClose(y.toArray(), refY, tol: 1e-4, "\(what) forward (constant: \(constant))")
                    try plan.backwardData(dy: dyt, w: wt, dx: dx, kernelIsConstant: constant)
                    assertClose(dx.toArray(), ref.dx, tol: 1e-4, "\(what) backward-data (constant: \(constant))")
                }
                try plan.backwardFilter(x: xt, dy: dyt, dw: dw, db: db)
                assertClose(dw.toArray(), ref.dw, tol: 1e-4, "\(what) backward-filter dw")
                assertClose(db.toArray(), ref.db, tol: 1e-5, "\(what) backward-filter db")
                // Without bias and ReLU.
                try plan.forward(x: xt, w: wt, bias: nil, relu: false, y: y, kernelIsConstant: false)
                assertClose(y.toArray(), naiveForward(g, x: x, w: w, bias: [Float](repeating: 0, count: g.outC), relu: false),
                            tol: 1e-4, "\(what) forward without bias")
            }
        }
    }

    func testWrongTensorsAreClearErrors() throws {
        let g = try geometry([1, 5, 5, 3], filters: 4, kernel: (3, 3), stride: (1, 1), .same)
        for d in [cpuDevice as Device, openclDevice] {
            let plan = try d.convolutionPlan(g)
            let x = try Tensor(zeros: [1, 5, 5, 2], on: d), w = try Tensor(zeros: g.kernelShape, on: d), y = try Tensor(zeros: g.outShape, on: d)
            XCTAssertThrowsError(try plan.forward(x: x, w: w, bias: nil, relu: false, y: y, kernelIsConstant: false)) { e in
                XCTAssertTrue("\(e)".contains("forward x"), "\(e)")
            }
        }
        let other = try Tensor(zeros: g.inShape, on: openclDevice)
        let plan = try cpuDevice.convolutionPlan(g)
        XCTAssertThrowsError(try plan.forward(x: other, w: Tensor(zeros: g.kernelShape, on: cpuDevice), bias: nil, relu: false,
                                              y: Tensor(zeros: g.outShape, on: cpuDevice), kernelIsConstant: false)) { e in
            XCTAssertTrue("\(e)".contains("opencl"), "\(e)")
        }
    }

    // MARK: - Names

    func testPlansNameEachPassAlgorithm() throws {
        let first = try geometry([16, 150, 150, 3], filters: 64, kernel: (3, 3), stride: (1, 1), .same)
        let block2 = try geometry([16, 75, 75, 64], filters: 128, kernel: (3, 3), stride: (1, 1), .same)
        let block5 = try geometry([16, 2, 2, 512], filters: 512, kernel: (3, 3), stride: (1, 1), .same)
        let pointwise = try geometry([4, 7, 7, 256], filters: 64, kernel: (1, 1), stride: (1, 1), .same)
        let strided = try geometry([4, 15, 15, 64], filters: 64, kernel: (3, 3), stride: (2, 2), .same)

        func names(_ d: Device, _ g: WindowGeometry) throws -> [String] {
            let p = try d.convolutionPlan(g)
            return [p.forwardAlgorithm, p.backwardDataAlgorithm, p.backwardFilterAlgorithm]
        }
        // The CPU.
        let perThread = "im2col-gemm-per-thread(tile \(TiledIm2col.tileRows(first)) rows)"
        let firstTile = min(first.outPixels, (16 << 20) / first.patchSize)
        XCTAssertEqual(try names(cpuDevice, first), [perThread, "gemm-col2im(tile \(firstTile) rows)", perThread])
        XCTAssertEqual(try names(cpuDevice, block2), Array(repeating: "winograd-F(4x4,3x3)", count: 3))
        XCTAssertEqual(try names(cpuDevice, block5), Array(repeating: "winograd-F(2x2,3x3)", count: 3))
        XCTAssertEqual(try names(cpuDevice, pointwise), Array(repeating: "gemm-1x1", count: 3))
        XCTAssertEqual(try names(cpuDevice, strided)[1], "gemm-col2im(tile \(strided.outPixels) rows)")
        XCTAssertTrue(try names(cpuDevice, strided)[0].hasPrefix("im2col-gemm-per-thread("))
        // Workspace: none for one GEMM, some for the others.
        let pp = try cpuDevice.convolutionPlan(pointwise)
        XCTAssertEqual([pp.forwardWorkspace, pp.backwardDataWorkspace, pp.backwardFilterWorkspace], [0, 0, 0])
        let wp = try cpuDevice.convolutionPlan(block2)
        XCTAssertGreaterThan(wp.backwardDataWorkspace, wp.forwardWorkspace, "backward-data also holds the flipped kernel")
        XCTAssertGreaterThan(wp.backwardFilterWorkspace, 0)
        // OpenCL (PoCL: a CPU device, so no autotune and no Winograd by default): implicit GEMM,
        // split-K for the kernel gradient, col2im for strided backward-data; the generic path
        // with VGGTL_OCL_CONV=im2col, named as on the CPU.
        let clNames = try names(openclDevice, block2)
        XCTAssertTrue(clNames[0].hasPrefix("implicit-gemm(") && clNames[1].hasPrefix("implicit-gemm(") && clNames[2].hasPrefix("split-k("), "\(clNames)")
        XCTAssertTrue(try names(openclDevice, pointwise)[0].hasPrefix("implicit-gemm("))
        XCTAssertEqual(try names(openclDevice, strided)[1], "gemm-col2im(tile \(strided.outPixels) rows)")
        let cp = try openclDevice.convolutionPlan(block2)
        XCTAssertEqual([cp.forwardWorkspace, cp.backwardDataWorkspace], [0, 0], "implicit GEMM needs no workspace")
        let generic = try OpenCLDevice(index: 0, options: .init(convolution: .im2col))
        let tile = min(block2.outPixels, (16 << 20) / block2.patchSize)
        XCTAssertEqual(try names(generic, block2), ["im2col-gemm(tile \(tile) rows)", "gemm-col2im(tile \(tile) rows)", "im2col-gemm(tile \(tile) rows)"])
        XCTAssertEqual(try names(generic, pointwise), Array(repeating: "gemm-1x1", count: 3))
        XCTAssertEqual(try generic.convolutionPlan(block2).forwardWorkspace, tile * block2.patchSize)
    }

    /// `bench --layers` prints the plan's name for each pass, whole.
    func testKernelCasesCarryThePlansNames() throws {
        for d in [cpuDevice as Device, openclDevice] {
            let cases = try KernelCases.vgg16(on: d, size: 32, batch: 2)
            let convs = cases.filter { $0.layer.contains("_conv") }
            XCTAssertEqual(convs.count, 13 * 3 - 1)
            var side = 32, channels = 3
            for (b, block) in VGG16.blocks.enumerated() {
                for i in 1...block.convs {
                    let g = try geometry([2, side, side, channels], filters: block.filters, kernel: (3, 3), stride: (1, 1), .same)
                    let p = try d.convolutionPlan(g)
                    for (pass, name) in [("forward", p.forwardAlgorithm), ("backward-data", p.backwardDataAlgorithm),
                                         ("backward-filter", p.backwardFilterAlgorithm)] {
                        guard let c = convs.first(where: { $0.layer == "block\(b + 1)_conv\(i)" && $0.pass == pass }) else { continue }
                        XCTAssertEqual(c.algorithm, name, "\(d.name) \(c.name)")
                    }
                    channels = block.filters
                }
                side /= 2
            }
        }
    }

    func testBenchLayersPrintsWholeAlgorithmNames() throws {
        for device in ["cpu", "opencl"] {
            // OpenCL on the generic path: the specialised kernels of VGG16's nine geometries would
            // cost PoCL minutes to build; their names reach the table as these do
            // (testKernelCasesCarryThePlansNames).
            var environment = ProcessInfo.processInfo.environment
            environment["VGGTL_OCL_CONV"] = "im2col"
            let r = try ChildProcess(vggtlBinary.path, ["bench", "--device", device, "--layers", "--size", "32", "--batch", "1",
                                                        "--steps", "1", "--gemm", "0"], environment: environment,
                                     ownProcessGroup: true).wait(timeout: childTimeLimit)
            XCTAssertTrue(r.status == 0 && !r.signaled, r.text)
            if device == "cpu" {
                let first = try geometry([1, 32, 32, 3], filters: 64, kernel: (3, 3), stride: (1, 1), .same)
                XCTAssertTrue(r.text.contains(TiledIm2col.name(first) + " "), "block1_conv1's name, longer than 28 characters, whole:\n\(r.text)")
                XCTAssertTrue(r.text.contains("winograd-F(4x4,3x3)") || r.text.contains("winograd-F(2x2,3x3)"), r.text)
            } else {
                XCTAssertTrue(r.text.contains("gemm-col2im(tile 1024 rows)"), r.text)
            }
        }
    }

    /// `bench --tune` asks for a device whose plans autotune, and says so otherwise (its entry's
    /// format: OpenCLConvolutionTests.testAutotuneChoosesCachesAndLeavesCorrectResults).
    func testBenchTuneNeedsAnAutotunedDevice() throws {
        let r = try ChildProcess(vggtlBinary.path, ["bench", "--device", "cpu", "--tune", "--size", "32", "--batch", "1", "--gemm", "0"],
                                 ownProcessGroup: true).wait(timeout: childTimeLimit)
        XCTAssertTrue(r.status != 0 && !r.signaled, r.text)
        XCTAssertTrue(r.text.contains("--tune") && r.text.contains("autotune is on"), r.text)
    }

    // MARK: - Frozen kernels

    /// A frozen Winograd layer transforms its kernel once; a change through the tensor's API,
    /// a weights load or an optimizer update is noticed; unfreezing frees what was kept.
    func testFrozenKernelIsKeptAndChangesAreNoticed() throws {
        let d = cpuDevice
        var rng = SeededGenerator(seed: 3)
        let conv = try Conv2D("frozen", inChannels: 8, filters: 16, on: d, rng: &rng)
        conv.trainable = false
        let shape = [2, 6, 7, 8]
        let g = try conv.geometry(shape)
        let xv = randomArray(g.inCount, seed: 4), dyv = randomArray(g.outCount, seed: 5)
        let x = try Tensor(xv, shape: shape, on: d)
        let zeroBias = [Float](repeating: 0, count: 16)
        func expectOutput(_ w: [Float], _ what: String, line: UInt = #line) throws {
            assertClose(try conv.forward(x, .inference).toArray(), naiveForward(g, x: xv, w: w, bias: zeroBias, relu: true),
                        tol: 1e-4, what, line: line)
        }

        let w0 = conv.kernel.value.toArray()
        let y0 = try conv.forward(x, .inference).toArray()
        let plan = try XCTUnwrap(conv.currentPlan as? CPUConvolutionPlan)
        XCTAssertTrue(plan.forwardAlgorithm.hasPrefix("winograd"), plan.forwardAlgorithm)
        let winograd = try XCTUnwrap(plan.forwardChoice as? CPUWinograd, "not Winograd")
        let uFloats = CPUWinograd.kernelFloats(winograd.variant, c: 8, k: 16)
        XCTAssertEqual(plan.keptKernelFloats, uFloats, "the transformed kernel is kept")
        assertClose(y0, naiveForward(g, x: xv, w: w0, bias: zeroBias, relu: true), tol: 1e-4, "first forward")

        // Reused: a write the tensor does not see (straight to its buffer) leaves the kept transform in use.
        let w1 = w0.map { -0.5 * $0 }
        w1.withUnsafeBufferPointer { d.write($0, to: conv.kernel.value.buffer, offset: 0) }
        XCTAssertEqual(try conv.forward(x, .inference).toArray(), y0, "the kept transform was reused")
        // Noticed: after markChanged the kernel is transformed again.
        conv.kernel.value.markChanged()
        try expectOutput(w1, "after markChanged")

        // Loading weights again goes through the tensor's API.
        let w2 = randomArray(w0.count, seed: 6, range: -0.2...0.2)
        try loadWeights(WeightSet(tensors: [("frozen/kernel", g.kernelShape, w2), ("frozen/bias", [16], zeroBias)]), into: [conv])
        try expectOutput(w2, "after loadWeights")

        // Backward-data of a frozen layer keeps the flipped transform too, and notices uploads.
        let dyt = try Tensor(dyv, shape: g.outShape, on: d)
        func expectInputGradient(_ w: [Float], _ what: String, line: UInt = #line) throws {
            _ = try conv.forward(x, .training)
            let dx = try XCTUnwrap(try conv.backward(dyt, inputGradient: true)).toArray()
            let y = naiveForward(g, x: xv, w: w, bias: zeroBias, relu: true)
            let masked = zip(dyv, y).map { $1 > 0 ? $0 : 0 }
            assertClose(dx, naiveBackward(g, x: xv, w: w, dy: masked).dx, tol: 1e-4, what, line: line)
        }
        try expectInputGradient(w2, "frozen backward-data")
        XCTAssertEqual(plan.keptKernelFloats, 2 * uFloats, "forward and backward-data transforms kept")
        XCTAssertNil(conv.kernel.grad, "a frozen kernel gets no gradient")
        let w3 = randomArray(w0.count, seed: 7, range: -0.2...0.2)
        conv.kernel.value.upload(w3)
        try expectInputGradient(w3, "frozen backward-data after upload")

        // Unfreezing frees the kept transforms; a training step's update is seen after refreezing.
        conv.trainable = true
        _ = try conv.forward(x, .training)
        XCTAssertEqual(plan.keptKernelFloats, 0, "a training layer keeps no transform")
        _ = try conv.backward(dyt, inputGradient: false)
        try SGD(learningRate: 0.1).update(conv.parameters)
        conv.trainable = false
        let w4 = conv.kernel.value.toArray(), b4 = conv.bias!.value.toArray()
        XCTAssertNotEqual(w4, w3)
        assertClose(try conv.forward(x, .inference).toArray(), naiveForward(g, x: xv, w: w4, bias: b4, relu: true),
                    tol: 1e-4, "refrozen after an update")
    }

    /// The version check does not rely on the caller's promise: an optimizer update between two
    /// calls that both pass kernelIsConstant is still noticed.
    func testOptimizerUpdateIsNoticedEvenWhenCallerSaysConstant() throws {
        let d = cpuDevice
        let g = try geometry([1, 5, 6, 8], filters: 8, kernel: (3, 3), stride: (1, 1), .same)
        let plan = try d.convolutionPlan(g)
        let xv = randomArray(g.inCount, seed: 1)
        let p = Parameter(name: "w", value: try Tensor(randomArray(9 * 64, seed: 2), shape: g.kernelShape, on: d))
        try p.setGradientForTesting(Tensor(randomArray(9 * 64, seed: 3), shape: g.kernelShape, on: d))
        let x = try Tensor(xv, shape: g.inShape, on: d), y = try Tensor(zeros: g.outShape, on: d)
        try plan.forward(x: x, w: p.value, bias: nil, relu: false, y: y, kernelIsConstant: true)
        for optimizer in [SGD(learningRate: 0.5, momentum: 0.9) as Optimizer, Adam(learningRate: 0.1), RMSprop(learningRate: 0.1)] {
            try optimizer.update([p])
            try plan.forward(x: x, w: p.value, bias: nil, relu: false, y: y, kernelIsConstant: true)
            assertClose(y.toArray(), naiveForward(g, x: xv, w: p.value.toArray(), bias: [Float](repeating: 0, count: 8), relu: false),
                        tol: 1e-4, "after a \(type(of: optimizer)) update")
        }
        // Another tensor with the same shape is another kernel.
        let other = try Tensor(randomArray(9 * 64, seed: 9), shape: g.kernelShape, on: d)
        try plan.forward(x: x, w: other, bias: nil, relu: false, y: y, kernelIsConstant: true)
        assertClose(y.toArray(), naiveForward(g, x: xv, w: other.toArray(), bias: [Float](repeating: 0, count: 8), relu: false),
                    tol: 1e-4, "another kernel tensor")
    }

    /// A frozen layer seen at two batch sizes keeps one transform, in the plan it runs now.
    func testOnlyTheCurrentPlanKeepsAKernel() throws {
        var rng = SeededGenerator(seed: 5)
        let conv = try Conv2D("two_batches", inChannels: 8, filters: 8, on: cpuDevice, rng: &rng)
        conv.trainable = false
        let big = try Tensor(randomArray(2 * 6 * 6 * 8, seed: 1), shape: [2, 6, 6, 8], on: cpuDevice)
        let small = try Tensor(randomArray(6 * 6 * 8, seed: 2), shape: [1, 6, 6, 8], on: cpuDevice)
        let yBig = try conv.forward(big, .inference).toArray()
        let a = try XCTUnwrap(conv.currentPlan as? CPUConvolutionPlan)
        _ = try conv.forward(small, .inference)
        let b = try XCTUnwrap(conv.currentPlan as? CPUConvolutionPlan)
        XCTAssertFalse(a === b)
        XCTAssertEqual(a.keptKernelFloats, 0)
        XCTAssertGreaterThan(b.keptKernelFloats, 0)
        XCTAssertEqual(try conv.forward(big, .inference).toArray(), yBig)
        XCTAssertTrue(conv.currentPlan === a, "plans are kept per geometry")
        XCTAssertEqual(b.keptKernelFloats, 0)
    }

    // MARK: - Workspace and options

    func testEachDeviceOwnsItsWorkspace() throws {
        let g = try geometry([2, 9, 9, 16], filters: 16, kernel: (3, 3), stride: (1, 1), .same)
        func run(on d: Device) throws -> ConvolutionPlan {
            let plan = try d.convolutionPlan(g)
            try plan.forward(x: Tensor(zeros: g.inShape, on: d), w: Tensor(zeros: g.kernelShape, on: d), bias: nil, relu: false,
                             y: Tensor(zeros: g.outShape, on: d), kernelIsConstant: false)
            return plan
        }
        weak var firstBuffer: DeviceBuffer?
        weak var firstDevice: CPUDevice?
        let second = try CPUDevice()
        do {
            let first = try CPUDevice()
            firstDevice = first
            let plan = try run(on: first)
            XCTAssertGreaterThanOrEqual(first.workspace.floats, plan.forwardWorkspace)
            XCTAssertGreaterThan(plan.forwardWorkspace, 0)
            XCTAssertEqual(second.workspace.floats, 0, "another device's workspace is untouched")
            firstBuffer = first.workspace.current
            XCTAssertNotNil(firstBuffer)
        }
        _ = try run(on: second)
        XCTAssertNotNil(second.workspace.current)
        XCTAssertNil(firstDevice, "nothing outside holds the device")
        XCTAssertNil(firstBuffer, "the workspace went with its device: no global table keeps it")
        // OpenCL devices own theirs as well.
        let cl = try OpenCLDevice(index: 0, options: .init(convolution: .im2col))
        XCTAssertEqual(cl.workspace.floats, 0)
        let plan = try run(on: cl)
        XCTAssertGreaterThan(plan.forwardWorkspace, 0)
        XCTAssertEqual(cl.workspace.floats, plan.forwardWorkspace)
    }

    func testOptionsTakeEffect() throws {
        let g = try geometry([2, 40, 40, 16], filters: 16, kernel: (3, 3), stride: (1, 1), .same)
        XCTAssertEqual(try cpuDevice.convolutionPlan(g).forwardAlgorithm, "winograd-F(4x4,3x3)")
        // The knobs as the CLI reads them from the environment, handed to the device as options.
        func open(_ choice: DeviceChoice, _ env: [String: String]) throws -> Device {
            let knobs = try Knobs(environment: env).validated()
            return try choice.open(cpu: knobs.cpu, opencl: knobs.opencl)
        }
        func forward(_ env: [String: String]) throws -> String {
            try open(.cpu, env).convolutionPlan(g).forwardAlgorithm
        }
        XCTAssertEqual(try forward(["VGGTL_CONV": "winograd2"]), "winograd-F(2x2,3x3)")
        XCTAssertEqual(try forward(["VGGTL_CONV": "im2col"]), "im2col-gemm-per-thread(tile \(TiledIm2col.tileRows(g)) rows)")
        XCTAssertEqual(try forward(["VGGTL_CONV": "im2colWholeTile"]), "im2col-gemm(tile \(g.outPixels) rows)")
        XCTAssertEqual(try forward([:]), "winograd-F(4x4,3x3)")

        let o = try Knobs(environment: ["VGGTL_CONV": "winograd4", "VGGTL_WINOGRAD_CHUNK": "1000"]).validated().cpu
        XCTAssertEqual(o, CPUDevice.Options(convolution: .winograd4, winogradChunkFloats: 1000))
        for (name, value) in [("VGGTL_CONV", "fastest"), ("VGGTL_WINOGRAD_CHUNK", "lots"), ("VGGTL_WINOGRAD_CHUNK", "0")] {
            XCTAssertThrowsError(try open(.cpu, [name: value])) { e in
                XCTAssertTrue("\(e)".contains(name) && "\(e)".contains(value), "\(e)")
            }
        }
        // Smaller Winograd chunks take less workspace; smaller im2col tiles show in the name and workspace.
        let chunked = try open(.cpu, ["VGGTL_WINOGRAD_CHUNK": "20000"]).convolutionPlan(g)
        XCTAssertLessThan(chunked.forwardWorkspace, try cpuDevice.convolutionPlan(g).forwardWorkspace)
        let strided = try geometry([1, 9, 9, 4], filters: 4, kernel: (3, 3), stride: (2, 2), .valid)
        let tiled = try CPUDevice(options: .init(im2colTileFloats: 3 * 36)).convolutionPlan(strided)
        XCTAssertEqual(tiled.backwardDataAlgorithm, "gemm-col2im(tile 3 rows)")
        XCTAssertEqual(tiled.backwardDataWorkspace, 3 * 36)
        let clTiled = try OpenCLDevice(index: 0, options: .init(im2colTileFloats: 5 * 36, convolution: .im2col)).convolutionPlan(strided)
        XCTAssertEqual(clTiled.forwardAlgorithm, "im2col-gemm(tile 5 rows)")

        // OpenCL's knobs: VGGTL_OCL_CONV restricts the candidates, VGGTL_OCL_TILE sets the tile.
        func clForward(_ env: [String: String]) throws -> String {
            try open(.opencl(0), env).convolutionPlan(g).forwardAlgorithm
        }
        XCTAssertEqual(try clForward(["VGGTL_OCL_CONV": "winograd4"]), "winograd-F(4x4,3x3)(32x32x16/4x4)")
        XCTAssertEqual(try clForward(["VGGTL_OCL_CONV": "im2col"]), "im2col-gemm(tile \(g.outPixels) rows)")
        XCTAssertEqual(try clForward(["VGGTL_OCL_TILE": "64x32x16/4x4"]), "implicit-gemm(64x32x16/4x4)")
        let clOptions = try Knobs(environment: ["VGGTL_OCL_CONV": "implicit", "VGGTL_OCL_AUTOTUNE": "1", "VGGTL_OCL_WORKSPACE_MB": "64",
                                                "VGGTL_CLBLAST_XGEMM": "MWG=64, NWG=32"]).validated().opencl
        XCTAssertEqual(clOptions, OpenCLDevice.Options(convolution: .implicit, autotune: true, workspaceBytes: 64 << 20,
                                                       clblastXgemm: ["MWG": 64, "NWG": 32]))
        for (name, value) in [("VGGTL_OCL_CONV", "fastest"), ("VGGTL_OCL_AUTOTUNE", "maybe"), ("VGGTL_OCL_TILE", "128x64"),
                              ("VGGTL_OCL_TILE", "100x64x16/8x4"), ("VGGTL_OCL_WORKSPACE_MB", "-1"), ("VGGTL_CLBLAST_XGEMM", "MWG")] {
            XCTAssertThrowsError(try open(.opencl(0), [name: value])) { e in
                XCTAssertTrue("\(e)".contains(name) && "\(e)".contains(value), "\(e)")
            }
        }
    }

    func testCheckHealthyOnTheCPUNeverThrows() throws {
        XCTAssertNoThrow(try (cpuDevice as Device).checkHealthy())
    }
}

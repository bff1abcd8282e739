import XCTest
@testable import VGGTL
@testable import VGGTLTensors
@testable import VGGTLOpenCL

/// The OpenCL convolution algorithms (implicit GEMM, split-K, Winograd F(2x2)/F(4x4), and the
/// CLBlast im2col/1x1/convgemm paths they are chosen against) on PoCL, each pass against a float64
/// direct convolution computed on the CPU, at odd shapes: odd sizes, stride 2, valid/same and
/// asymmetric padding, 1x1, 3x3, 7x7 stride 2, 1x7/7x1, channels that are multiples of no
/// tile, batch 1 and 3. Plus finite-difference checks of the backward passes through the
/// device's own forward, and the autotuner's choice and its cache.
final class OpenCLConvolutionTests: VGGTLTestCase {
    var device: OpenCLDevice { openclDevice }

    /// Forward (bias, ReLU), dx, dw, db in float64, straight from the definition.
    static func reference(_ g: WindowGeometry, x: [Float], w: [Float], bias: [Float], relu: Bool, dy: [Float])
        -> (y: [Float], dx: [Float], dw: [Float], db: [Float]) {
        var y = [Double](repeating: 0, count: g.outCount)
        var dx = [Double](repeating: 0, count: g.inCount)
        var dw = [Double](repeating: 0, count: g.patchSize * g.outC)
        var db = [Double](repeating: 0, count: g.outC)
        for n in 0..<g.batch { for oh in 0..<g.outH { for ow in 0..<g.outW {
            let o = ((n * g.outH + oh) * g.outW + ow) * g.outC
            for kh in 0..<g.kH { for kw in 0..<g.kW {
                let ih = oh * g.strideH - g.padTop + kh, iw = ow * g.strideW - g.padLeft + kw
                guard ih >= 0, ih < g.inH, iw >= 0, iw < g.inW else { continue }
                let i = ((n * g.inH + ih) * g.inW + iw) * g.inC
                for c in 0..<g.inC {
                    let wBase = ((kh * g.kW + kw) * g.inC + c) * g.outC
                    let xv = Double(x[i + c])
                    for k in 0..<g.outC {
                        y[o + k] += xv * Double(w[wBase + k])
                        dx[i + c] += Double(dy[o + k]) * Double(w[wBase + k])
                        dw[wBase + k] += xv * Double(dy[o + k])
                    }
                }
            } }
            for k in 0..<g.outC {
                y[o + k] += Double(bias[k])
                if relu { y[o + k] = max(y[o + k], 0) }
                db[k] += Double(dy[o + k])
            }
        } } }
        return (y.map(Float.init), dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    /// What to run at a geometry beyond implicit GEMM and split-K with the device's first tile
    /// (every case runs those): each specialised program costs PoCL a few seconds to build, so
    /// the Winograd variants, the CLBlast paths and GPU-sized tiles run where they matter.
    struct Case {
        var name: String
        var g: WindowGeometry
        var winograd: [Int] = []
        var clblast = false
        /// CLBlast's convgemm (forward, symmetric padding).
        var convgemm = false
        var tiles: [ConvTile] = []
        /// Another batch size run through the same (batch-independent) kernels.
        var otherBatch: Int? = nil
    }

    static func geometry(_ s: [Int], _ k: (Int, Int), _ stride: Int, _ p: Padding, _ filters: Int) -> WindowGeometry {
        try! WindowGeometry(batch: s[0], inH: s[1], inW: s[2], inC: s[3], kernel: k, stride: (stride, stride), padding: p, outC: filters)
    }

    /// Explicit padding (top, bottom, left, right), as ZeroPadding2D in front of a 'valid' convolution.
    static func padded(_ s: [Int], _ k: (Int, Int), _ pads: (Int, Int, Int, Int), _ filters: Int) -> WindowGeometry {
        var g = try! WindowGeometry(batch: s[0], inH: s[1], inW: s[2], inC: s[3], kernel: k, stride: (1, 1), padding: .valid, outC: filters)
        g.padTop = pads.0; g.padLeft = pads.2
        g.outH = s[1] + pads.0 + pads.1 - k.0 + 1; g.outW = s[2] + pads.2 + pads.3 - k.1 + 1
        return g
    }

    /// Several geometries are those of ParityTests and ConvolutionPlanTests (other batches), so
    /// that one test run builds their kernels once.
    static let cases: [Case] = [
        Case(name: "3x3 same, 3 input channels (block1_conv1 class)", g: geometry([1, 7, 9, 3], (3, 3), 1, .same, 64), otherBatch: 3),
        Case(name: "3x3 same, odd channels", g: geometry([3, 6, 5, 20], (3, 3), 1, .same, 24), winograd: [2, 4],
             convgemm: true, tiles: [ConvTile(128, 128, 16, 8, 8)], otherBatch: 1),
        Case(name: "3x3 valid", g: geometry([2, 8, 6, 4], (3, 3), 1, .valid, 6), winograd: [2]),
        Case(name: "3x3 stride 2 same, even sizes (asymmetric padding)", g: geometry([2, 8, 10, 7], (3, 3), 2, .same, 9),
             clblast: true, tiles: [ConvTile(32, 64, 16, 2, 4)]),
        Case(name: "3x3 explicit asymmetric padding (2, 1, 0, 1)", g: padded([1, 7, 7, 9], (3, 3), (2, 1, 0, 1), 11), winograd: [4]),
        Case(name: "7x7 stride 2 same (ResNet stem class)", g: geometry([1, 15, 13, 3], (7, 7), 2, .same, 16), convgemm: true),
        Case(name: "1x1 (pointwise)", g: geometry([2, 5, 7, 6], (1, 1), 1, .same, 4), clblast: true),
        Case(name: "1x1 stride 2", g: geometry([3, 8, 8, 3], (1, 1), 2, .valid, 4)),
        Case(name: "1x7 same", g: geometry([1, 9, 8, 10], (1, 7), 1, .same, 12)),
        Case(name: "7x1 same", g: geometry([1, 8, 9, 10], (7, 1), 1, .same, 12)),
    ]

    func put(_ values: [Float], _ t: Tensor) {
        values.withUnsafeBufferPointer { t.device.write($0, to: t.buffer, offset: 0) }
    }

    /// Tensors and float64 results of one geometry.
    struct Problem {
        let g: WindowGeometry
        let x: Tensor, w: Tensor, b: Tensor, dy: Tensor, y: Tensor, dx: Tensor, dw: Tensor, db: Tensor
        let ref: (y: [Float], dx: [Float], dw: [Float], db: [Float])
        let yLinear: [Float]

        init(_ g: WindowGeometry, on d: Device) throws {
            self.g = g
            let xv = randomArray(g.inCount, seed: 1), wv = randomArray(g.patchSize * g.outC, seed: 2, range: -0.5...0.5)
            let bv = randomArray(g.outC, seed: 3, range: -0.3...0.3), dyv = randomArray(g.outCount, seed: 4)
            ref = OpenCLConvolutionTests.reference(g, x: xv, w: wv, bias: bv, relu: true, dy: dyv)
            yLinear = OpenCLConvolutionTests.reference(g, x: xv, w: wv, bias: [Float](repeating: 0, count: g.outC), relu: false, dy: dyv).y
            x = try Tensor(xv, shape: [g.batch, g.inH, g.inW, g.inC], on: d)
            w = try Tensor(wv, shape: [g.kH, g.kW, g.inC, g.outC], on: d)
            b = try Tensor(bv, shape: [g.outC], on: d); dy = try Tensor(dyv, shape: g.outShape, on: d)
            y = try Tensor(zeros: g.outShape, on: d); dx = try Tensor(zeros: [g.batch, g.inH, g.inW, g.inC], on: d)
            dw = try Tensor(zeros: [g.kH, g.kW, g.inC, g.outC], on: d); db = try Tensor(zeros: [g.outC], on: d)
        }
    }

    /// Runs the given algorithms of each pass of `g` against the float64 reference.
    func check(_ name: String, _ g: WindowGeometry, forward: [OpenCLConvAlgorithm], backwardData: [OpenCLConvAlgorithm],
               backwardFilter: [OpenCLConvAlgorithm]) throws {
        let p = try Problem(g, on: device)
        let plan = OpenCLConvolutionPlan(device: device, geometry: g)
        let nan = { (count: Int) in [Float](repeating: .nan, count: count) }   // every element must be overwritten
        for a in unique(forward) {
            let label = "\(name) batch \(g.batch) \(plan.name(a, .forward))"
            put(nan(g.outCount), p.y)
            try plan.forward(using: a, x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: false)
            assertClose(p.y.toArray(), p.ref.y, tol: 1e-4, "\(label) forward with bias and ReLU")
            put(nan(g.outCount), p.y)
            try plan.forward(using: a, x: p.x, w: p.w, bias: nil, relu: false, y: p.y, kernelIsConstant: false)
            assertClose(p.y.toArray(), p.yLinear, tol: 1e-4, "\(label) forward, no bias")
        }
        for a in unique(backwardData) {
            put(nan(g.inCount), p.dx)
            try plan.backwardData(using: a, dy: p.dy, w: p.w, dx: p.dx, kernelIsConstant: false)
            assertClose(p.dx.toArray(), p.ref.dx, tol: 1e-4, "\(name) batch \(g.batch) \(plan.name(a, .backwardData)) backward-data")
        }
        for a in unique(backwardFilter) {
            let label = "\(name) batch \(g.batch) \(plan.name(a, .backwardFilter))"
            put(nan(p.dw.count), p.dw); put(nan(g.outC), p.db)
            try plan.backwardFilter(using: a, x: p.x, dy: p.dy, dw: p.dw, db: p.db)
            assertClose(p.dw.toArray(), p.ref.dw, tol: 1e-4, "\(label) backward-filter dw")
            assertClose(p.db.toArray(), p.ref.db, tol: 1e-4, "\(label) backward-filter db")
            put(nan(p.dw.count), p.dw)
            try plan.backwardFilter(using: a, x: p.x, dy: p.dy, dw: p.dw, db: nil)
            assertClose(p.dw.toArray(), p.ref.dw, tol: 1e-4, "\(label) backward-filter dw without db")
        }
        try device.checkHealthy()
    }

    func testEveryAlgorithmAtOddShapes() throws {
        let first = device.convolutionKernels.tiles[0]
        for c in Self.cases {
            let g = c.g
            let tiles = [first] + c.tiles
            var forward: [OpenCLConvAlgorithm] = tiles.map { ImplicitGemm(tile: $0) }
            var backwardData = forward
            var backwardFilter: [OpenCLConvAlgorithm] = tiles.filter(\.fitsColumnStaging).map { SplitK(tile: $0) }
            // One split (written straight to dw/db) and several (reduced on the device).
            backwardFilter += [SplitK(tile: first, splits: 1), SplitK(tile: first, splits: 3)]
            for m in c.winograd {
                forward.append(OpenCLWinograd(m: m, tile: first)); backwardData.append(OpenCLWinograd(m: m, tile: first))
                backwardFilter.append(OpenCLWinograd(m: m, tile: first))
            }
            if c.clblast {
                let generic: OpenCLConvAlgorithm = g.kH == 1 && g.kW == 1 && g.strideH == 1
                    ? PointwiseGemm<OpenCLConvContext>() : Im2colGemm<OpenCLConvContext>()
                forward.append(generic); backwardData.append(generic); backwardFilter.append(generic)
            }
            if c.convgemm { forward.append(CLBlastConvgemm()) }
            try check(c.name, g, forward: forward, backwardData: backwardData, backwardFilter: backwardFilter)
            if let n = c.otherBatch {
                var other = g
                other.batch = n
                try check(c.name, other, forward: forward, backwardData: backwardData, backwardFilter: backwardFilter)
            }
        }
        // A workspace of a few chunks' worth: Winograd's chunks of tiles, the kernel gradient
        // accumulating over them.
        let ctx = device.convolutionKernels
        let savedOptions = ctx.options
        defer { ctx.options = savedOptions }
        ctx.options.workspaceBytes = 16 * 4 * 20 * 7 * 4   // 7 tiles of F(2x2) at 20 input channels
        let chunked = Self.cases[1]
        let chunkedPlan = OpenCLConvolutionPlan(device: device, geometry: chunked.g)
        let winograd2 = OpenCLWinograd(m: 2, tile: first)
        XCTAssertLessThan(winograd2.chunk(chunkedPlan.context, .forward(chunked.g)), 27, "several chunks")
        try check(chunked.name + " in chunks", chunked.g, forward: [winograd2], backwardData: [winograd2], backwardFilter: [winograd2])
        ctx.options = savedOptions

        // Many splits: the reduction's lanes each add several partial sums before the tree.
        let many = Self.geometry([2, 23, 19, 3], (3, 3), 1, .same, 8)
        let plan = OpenCLConvolutionPlan(device: device, geometry: many)
        XCTAssertGreaterThanOrEqual(SplitK(tile: first, splits: 50).plan(plan.context).splits, 16)
        try check("3x3 same, 874 pixels", many, forward: [], backwardData: [], backwardFilter: [SplitK(tile: first, splits: 50)])
        // The Winograd kernel gradient split over tiles (as a GPU's many compute units ask for).
        ctx.options.workGroupsPerUnit = 64
        XCTAssertGreaterThan(winograd2.filterSplits(plan.context).splits, 1)
        try check("3x3 same, 874 pixels, split", many, forward: [], backwardData: [], backwardFilter: [winograd2])
        ctx.options = savedOptions
    }

    func unique(_ list: [OpenCLConvAlgorithm]) -> [OpenCLConvAlgorithm] {
        var seen = Set<AnyHashable>()
        return list.filter { seen.insert(AnyHashable($0)).inserted }
    }


    /// L = sum(conv(x, w) * r): dL/dx from backward-data and dL/dw from backward-filter against
    /// central differences of the device's own forward (linear, so the differences are exact up
    /// to float32 rounding), for the transposed implicit GEMM and split-K at stride 2 with
    /// asymmetric padding and for Winograd F(4x4) (all three passes) with explicit asymmetric padding.
    func testBackwardPassesMatchFiniteDifferences() throws {
        let first = device.convolutionKernels.tiles[0]
        let h: Float = 5e-3
        let runs: [(Case, OpenCLConvAlgorithm, OpenCLConvAlgorithm)] = [
            (Self.cases[3], ImplicitGemm(tile: first), SplitK(tile: first, splits: 2)),
            (Self.cases[4], OpenCLWinograd(m: 4, tile: first), OpenCLWinograd(m: 4, tile: first))]
        for (c, a, filter) in runs {
            let g = c.g
            let p = try Problem(g, on: device)
            let plan = OpenCLConvolutionPlan(device: device, geometry: g)
            let r = p.dy.toArray()
            try plan.backwardData(using: a, dy: p.dy, w: p.w, dx: p.dx, kernelIsConstant: false)
            try plan.backwardFilter(using: filter, x: p.x, dy: p.dy, dw: p.dw, db: nil)
            let analytic = [p.dx.toArray(), p.dw.toArray()]
            func loss() throws -> Double {
                try plan.forward(using: a, x: p.x, w: p.w, bias: nil, relu: false, y: p.y, kernelIsConstant: false)
                return zip(p.y.toArray(), r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            for (which, t) in [p.x, p.w].enumerated() {
                var values = t.toArray()
                var rng = SeededGenerator(seed: 40 + UInt64(which))
                for _ in 0..<12 {
                    let i = Int(rng.next() % UInt64(values.count))
                    let v = values[i]
                    values[i] = v + h; put(values, t); let lp = try loss()
                    values[i] = v - h; put(values, t); let lm = try loss()
                    values[i] = v; put(values, t)
                    let numeric = Float((lp - lm) / Double(2 * h))
                    XCTAssertLessThanOrEqual(abs(numeric - analytic[which][i]), 2e-3 + 1e-2 * abs(numeric),
                                             "\(c.name) \(plan.name(a, .forward)) d/d\(which == 0 ? "x" : "w")[\(i)]: analytic \(analytic[which][i]) numeric \(numeric)")
                }
            }
        }
    }

    /// With autotune on, the first call of each pass times every candidate, leaves the winner's
    /// results, names the winner and stores it; a new plan for the same geometry reads it back
    /// without timing anything.
    func testAutotuneChoosesCachesAndLeavesCorrectResults() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-tuning-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A device of its own, as `VGGTL_OCL_AUTOTUNE=1 VGGTL_OCL_TUNE_REPORT=...` opens one.
        let device = try OpenCLDevice(index: 0, options: .init(autotune: true, tuneReport: dir.appendingPathComponent("report.txt").path))
        let ctx = device.convolutionKernels
        XCTAssertTrue(ctx.options.autotune)
        ctx.tiles = [ctx.tiles[0]]   // kernels testEveryAlgorithmAtOddShapes builds anyway (from the disk cache)
        ctx.tuningCache = ConvolutionTuningCache(directory: dir, identity: device.programIdentity)

        let g = Self.cases[6].g   // pointwise: implicit GEMM tiles and CLBlast's 1x1 GEMM compete
        let p = try Problem(g, on: device)
        let plan = OpenCLConvolutionPlan(device: device, geometry: g)
        try plan.forward(x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: false)
        assertClose(p.y.toArray(), p.ref.y, tol: 1e-4, "autotuned forward")
        try plan.backwardData(dy: p.dy, w: p.w, dx: p.dx, kernelIsConstant: false)
        assertClose(p.dx.toArray(), p.ref.dx, tol: 1e-4, "autotuned backward-data")
        try plan.backwardFilter(x: p.x, dy: p.dy, dw: p.dw, db: p.db)
        assertClose(p.dw.toArray(), p.ref.dw, tol: 1e-4, "autotuned backward-filter dw")
        assertClose(p.db.toArray(), p.ref.db, tol: 1e-4, "autotuned backward-filter db")
        for pass in ConvPass.allCases {
            let m = try XCTUnwrap(plan.measurements[pass], "\(pass) measured")
            XCTAssertEqual(Set(m.map(\.name)), Set(plan.candidates(pass).map { plan.name($0, pass) }), "\(pass): every candidate timed")
            XCTAssertEqual(plan.name(plan.algorithm(pass), pass), m[0].name, "\(pass): the fastest is chosen")
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".txt") && $0 != "report.txt" }
        XCTAssertEqual(stored.count, 3, "one tuning entry per pass")

        let report = try String(contentsOf: dir.appendingPathComponent("report.txt"), encoding: .utf8)
        XCTAssertEqual(report.split(separator: "\n").count, 3, report)
        XCTAssertTrue(report.contains("backward-filter: ") && report.contains(" ms; "), report)

        let again = OpenCLConvolutionPlan(device: device, geometry: g)
        for pass in ConvPass.allCases {
            XCTAssertEqual(again.name(again.algorithm(pass), pass), plan.name(plan.algorithm(pass), pass), "\(pass): read back")
        }
        try again.forward(x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: false)
        XCTAssertNil(again.measurements[.forward], "no second tuning")
        assertClose(p.y.toArray(), p.ref.y, tol: 1e-4, "forward with the cached choice")

        // The choices, as an entry of the device's tuning table: the tiles that won first, then
        // the rest of the device's list; comments say what was tuned and which file it goes to.
        let entry = try XCTUnwrap(device.convolutionTuningEntry)
        XCTAssertTrue(device.convolutionAutotune)
        XCTAssertTrue(entry.contains("// 3 passes tuned: "), entry)
        XCTAssertTrue(entry.contains("// For Tuning/\(ConvTileTable.family(for: ctx.deviceClass).name).swift, in devices:"), entry)
        let line = try XCTUnwrap(entry.split(separator: "\n").last)
        let table = ConvTileTable.tiles(for: ctx.deviceClass).map { "\"\($0)\"" }
        XCTAssertTrue(line.hasPrefix("ConvTileTable.Entry(\"\(device.info.name)\", [") && line.hasSuffix("]),"), String(line))
        for t in table { XCTAssertTrue(line.contains(t), "\(line) has \(t)") }
        let won = ConvPass.allCases.compactMap { (plan.algorithm($0) as? TiledConvolution)?.tile }
        if let t = won.first { XCTAssertTrue(line.contains("[\"\(t)\"") && entry.contains("won: \(t)"), entry) }
        if !openclDevice.convolutionAutotune { XCTAssertNil(openclDevice.convolutionTuningEntry, "nothing tuned without an autotune") }
    }

    /// A frozen layer's Winograd kernel transform is kept while the caller promises the kernel
    /// is unchanged (the test breaks the promise behind the tensor's back to see it), recomputed
    /// when the tensor says it changed, and freed by a call that does not promise.
    func testFrozenKernelTransformIsKept() throws {
        let first = device.convolutionKernels.tiles[0]
        let g = Self.cases[1].g
        let p = try Problem(g, on: device)
        let plan = OpenCLConvolutionPlan(device: device, geometry: g)
        let a = OpenCLWinograd(m: 2, tile: first)
        XCTAssertEqual(plan.keptKernelFloats, 0)
        try plan.forward(using: a, x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: true)
        assertClose(p.y.toArray(), p.ref.y, tol: 1e-4, "first call")
        XCTAssertEqual(plan.keptKernelFloats, 16 * g.inC * g.outC, "U of F(2x2) kept")
        let w2 = p.w.toArray().map { $0 * -0.5 }
        put(w2, p.w)   // a raw write: the tensor does not know it changed
        try plan.forward(using: a, x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: true)
        assertClose(p.y.toArray(), p.ref.y, tol: 1e-4, "kept transform (the kernel 'did not change')")
        let ref2 = Self.reference(g, x: p.x.toArray(), w: w2, bias: p.b.toArray(), relu: true, dy: p.dy.toArray())
        p.w.markChanged()
        try plan.forward(using: a, x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: true)
        assertClose(p.y.toArray(), ref2.y, tol: 1e-4, "a changed tensor is transformed again")
        try plan.forward(x: p.x, w: p.w, bias: p.b, relu: true, y: p.y, kernelIsConstant: false)
        assertClose(p.y.toArray(), ref2.y, tol: 1e-4, "not constant")
        XCTAssertEqual(plan.keptKernelFloats, 0, "nothing kept for a kernel that trains")
    }

    /// The per-device tile table falls back device -> architecture -> vendor -> type -> default,
    /// and every shape in it fits the staging loops of the kernels it is offered to.
    func testTileTable() {
        func cls(_ vendor: String, _ arch: String, _ name: String, _ type: OpenCLDeviceType) -> OpenCLDeviceClass {
            OpenCLDeviceClass(vendor: vendor, architecture: arch, device: name, type: type)
        }
        let nvidia = ConvTileTable.tiles(for: cls("NVIDIA Corporation", "SM9.0", "NVIDIA H200", .gpu))
        XCTAssertEqual(nvidia.map(\.description), ConvTileTable.Family.nvidia.tiles)
        XCTAssertEqual(nvidia.first, ConvTile(128, 128, 16, 8, 8))
        XCTAssertTrue(nvidia.contains(ConvTile(32, 64, 16, 2, 4)), "a narrow tile for the 27-row kernel gradient of block1_conv1")
        XCTAssertEqual(ConvTileTable.tiles(for: cls("GenuineIntel", "", "pthread-skylake", .cpu)).first, ConvTile(32, 32, 16, 4, 4))
        XCTAssertEqual(ConvTileTable.tiles(for: cls("Intel(R) Corporation", "", "Intel(R) Arc(TM) A770", .gpu)).first, ConvTile(64, 64, 16, 4, 4))
        XCTAssertEqual(ConvTileTable.tiles(for: cls("Someone", "", "Something", .accelerator)),
                       ConvTileTable.Family.fallback.tiles.map(ConvTileTable.parse))
        XCTAssertEqual(ConvTileTable.tiles(for: cls("Advanced Micro Devices, Inc.", "gfx90a", "gfx90a", .gpu)).first, ConvTile(128, 128, 16, 8, 8))
        XCTAssertEqual(ConvTileTable.tiles(for: cls("Someone", "", "Something", .gpu)), ConvTileTable.Family.gpus.tiles.map(ConvTileTable.parse))
        // Every list of every family parses, fits the staging loops, and its family has its file.
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/VGGTLOpenCL/Convolution/Tuning")
        for f in ConvTileTable.families + [.fallback] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(f.name + ".swift").path), f.name)
            for list in [f.tiles] + (f.architectures + f.devices).map(\.tiles) {
                XCTAssertFalse(list.isEmpty, f.name)
                for text in list {
                    let t = ConvTile(text)
                    XCTAssertEqual(t?.description, text, "\(f.name): \(text)")
                    XCTAssertTrue(t?.fitsRowStaging ?? false, "\(f.name): \(text)")
                }
            }
        }
        // Within a family a device entry beats an architecture entry, which beats the family's list.
        var family = ConvTileTable.Family.nvidia
        family.architectures = [.init("SM9.0", ["64x64x16/4x4"])]
        family.devices = [.init("H200", ["32x64x16/2x4"])]
        XCTAssertEqual(family.tiles(for: cls("NVIDIA Corporation", "SM9.0", "NVIDIA H200", .gpu)), ["32x64x16/2x4"])
        XCTAssertEqual(family.tiles(for: cls("NVIDIA Corporation", "SM9.0", "NVIDIA H100", .gpu)), ["64x64x16/4x4"])
        XCTAssertEqual(family.tiles(for: cls("NVIDIA Corporation", "SM8.0", "NVIDIA A100", .gpu)), family.tiles)
        XCTAssertEqual(ConvTile("128x64x16/8x4"), ConvTile(128, 64, 16, 8, 4))
        XCTAssertNil(ConvTile("128x64"))
    }

    /// What runs without an autotune on this (CPU-type) device, and the split-K arithmetic.
    func testDefaultsAndSplitPlan() throws {
        let plan = OpenCLConvolutionPlan(device: device, geometry: Self.cases[3].g)   // stride 2
        XCTAssertTrue(plan.defaultAlgorithm(.forward) is ImplicitGemm, "forward: \(plan.forwardAlgorithm)")
        XCTAssertTrue(plan.defaultAlgorithm(.backwardData) is Im2colGemm<OpenCLConvContext>, "strided backward-data")
        XCTAssertTrue(plan.defaultAlgorithm(.backwardFilter) is SplitK, "backward-filter: \(plan.backwardFilterAlgorithm)")
        XCTAssertEqual(plan.workspace(ImplicitGemm(tile: ConvTile(32, 32, 16, 4, 4)), .forward), 0, "implicit GEMM needs no workspace")
        let big = try WindowGeometry(batch: 16, inH: 224, inW: 224, inC: 3, kernel: (3, 3), stride: (1, 1), padding: .same, outC: 64)
        let bigPlan = OpenCLConvolutionPlan(device: device, geometry: big)
        let t = ConvTile(32, 64, 16, 2, 4)
        let s = SplitK(tile: t).plan(bigPlan.context)
        XCTAssertGreaterThan(s.splits, 1)
        XCTAssertEqual(s.chunk % t.tk, 0)
        XCTAssertGreaterThanOrEqual(s.splits * s.chunk, big.outPixels)
        XCTAssertLessThan((s.splits - 1) * s.chunk, big.outPixels, "no empty split")
        XCTAssertEqual(SplitK(tile: t, splits: 1).plan(bigPlan.context).splits, 1)
        XCTAssertTrue(bigPlan.backwardFilterAlgorithm.hasPrefix("split-k("), bigPlan.backwardFilterAlgorithm)
    }
}

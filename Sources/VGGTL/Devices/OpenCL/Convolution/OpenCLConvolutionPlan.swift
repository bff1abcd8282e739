import Foundation

/// One pass of a convolution.
enum ConvPass: String, CaseIterable, Sendable {
    case forward, backwardData = "backward-data", backwardFilter = "backward-filter"
}

/// One way of computing one pass of a convolution on an OpenCL device.
enum OpenCLConvAlgorithm: Hashable, Sendable {
    /// The patch gather fused into the GEMM tile loads (Kernels/conv/implicit_gemm.cl), bias and
    /// ReLU in the epilogue, no im2col buffer. Backward-data runs it as the transposed
    /// convolution: dy convolved with the kernel read flipped (and dy dilated by the stride).
    case implicitGemm(ConvTile)
    /// The kernel gradient as a GEMM over chunks of the N*OH*OW output pixels, one chunk per
    /// work-group layer, partial sums reduced on the device; the bias gradient alongside.
    /// `splits` nil: chosen from the geometry and the device's compute units.
    case splitK(ConvTile, splits: Int?)
    /// Winograd F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Kernels/conv/winograd.cl): input
    /// transform, (m+2)^2 batched GEMMs with `tile`, output transform with bias and ReLU.
    case winograd(m: Int, ConvTile)
    /// im2col tiles and CLBlast's sgemm (col2im for backward-data): the generic path, any geometry.
    case im2colGemm
    /// A 1x1, stride-1, unpadded convolution is one CLBlast sgemm.
    case gemm1x1
    /// CLBlast's own implicit-im2col convolution (`CLBlastSconvgemm`), forward only, between
    /// copies to and from its NCHW/OIHW layouts (Kernels/conv/layout.cl); symmetric padding only.
    case clblastConvgemm
}

/// The shape arithmetic a specialised kernel is compiled for: the convolution itself, or, for
/// backward-data, the transposed convolution dx = conv(dilate(dy, stride), flip(w)).
struct ConvKernelGeometry: Equatable {
    var ih: Int, iw: Int, ic: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    var oh: Int, ow: Int, oc: Int, dh: Int, dw: Int, flip: Bool

    static func forward(_ g: WindowGeometry) -> ConvKernelGeometry {
        ConvKernelGeometry(ih: g.inH, iw: g.inW, ic: g.inC, kh: g.kH, kw: g.kW, sh: g.strideH, sw: g.strideW,
                           ph: g.padTop, pw: g.padLeft, oh: g.outH, ow: g.outW, oc: g.outC, dh: 1, dw: 1, flip: false)
    }

    /// dx[i] = sum_kh dy[(i + padTop - kh) / s] w[kh] (where divisible): with kh' = KH-1-kh the
    /// tap offset is i - (KH-1-padTop) + kh', a stride-1 convolution over dy dilated by s.
    static func backwardData(_ g: WindowGeometry) -> ConvKernelGeometry {
        ConvKernelGeometry(ih: g.outH, iw: g.outW, ic: g.outC, kh: g.kH, kw: g.kW, sh: 1, sw: 1,
                           ph: g.kH - 1 - g.padTop, pw: g.kW - 1 - g.padLeft, oh: g.inH, ow: g.inW, oc: g.inC,
                           dh: g.strideH, dw: g.strideW, flip: true)
    }

    var defines: [(String, Int)] {
        [("IH", ih), ("IW", iw), ("IC", ic), ("KH", kh), ("KW", kw), ("SH", sh), ("SW", sw), ("PH", ph), ("PW", pw),
         ("OH", oh), ("OW", ow), ("OC", oc), ("DH", dh), ("DW", dw), ("FLIP", flip ? 1 : 0)]
    }

    var winogradApplies: Bool { kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 }
}

/// How one convolution geometry runs on one OpenCL device: an algorithm per pass, chosen among
/// candidates (a first-use autotune on GPUs, cached on disk; defaults from the geometry and the
/// device otherwise), with each pass's name and workspace.
final class OpenCLConvolutionPlan: ConvolutionPlan {
    let geometry: WindowGeometry
    let device: OpenCLDevice
    private let ctx: OpenCLConvolutionKernels
    private var chosen: [ConvPass: OpenCLConvAlgorithm] = [:]
    /// Transformed kernels (Winograd's U, convgemm's OIHW copy) kept for a frozen layer
    /// (`kernelIsConstant`), per pass, with the algorithm they belong to.
    private var kept: [ConvPass: (algorithm: OpenCLConvAlgorithm, kernel: KeptKernel)] = [:]
    /// Seconds per candidate from the autotune, fastest first (empty when none ran).
    private(set) var measurements: [ConvPass: [(name: String, seconds: Double)]] = [:]

    init(device: OpenCLDevice, geometry: WindowGeometry) {
        self.device = device
        self.geometry = geometry
        ctx = device.convolutionKernels
        if ctx.options.autotune, let cache = ctx.tuningCache {
            for pass in ConvPass.allCases {
                let c = candidates(pass)
                guard c.count > 1, let name = cache.load(cache.key(pass: pass.rawValue, geometry: geometry, candidates: c.map { self.name($0, pass) })),
                      let a = c.first(where: { self.name($0, pass) == name }) else { continue }
                chosen[pass] = a
            }
        }
    }

    // MARK: - Names and workspace

    var forwardAlgorithm: String { name(algorithm(.forward), .forward) }
    var backwardDataAlgorithm: String { name(algorithm(.backwardData), .backwardData) }
    var backwardFilterAlgorithm: String { name(algorithm(.backwardFilter), .backwardFilter) }
    var forwardWorkspace: Int { workspace(algorithm(.forward), .forward) }
    var backwardDataWorkspace: Int { workspace(algorithm(.backwardData), .backwardData) }
    var backwardFilterWorkspace: Int { workspace(algorithm(.backwardFilter), .backwardFilter) }

    /// The algorithm a pass runs: the tuned choice once there is one, else the default.
    func algorithm(_ pass: ConvPass) -> OpenCLConvAlgorithm { chosen[pass] ?? defaultAlgorithm(pass) }

    func name(_ a: OpenCLConvAlgorithm, _ pass: ConvPass) -> String {
        switch a {
        case .implicitGemm(let t): return "implicit-gemm(\(t))"
        case .splitK(let t, let s): return "split-k(\(t), \(splitPlan(t, forced: s).splits) splits)"
        case .winograd(let m, let t):
            if pass == .backwardFilter { return "winograd-F(\(m)x\(m),3x3)(\(t), \(winogradFilterSplits(m, t).splits) splits)" }
            return "winograd-F(\(m)x\(m),3x3)(\(t))"
        case .im2colGemm:
            switch pass {
            case .forward: return im2col.forwardName
            case .backwardData: return im2col.backwardDataName
            case .backwardFilter: return im2col.backwardFilterName
            }
        case .gemm1x1: return PointwiseConvolution.name
        case .clblastConvgemm: return "clblast-convgemm(NCHW copies)"
        }
    }

    /// The generic path's tiles (the device's `im2colTileFloats`).
    private var im2col: Im2colConvolution { Im2colConvolution(geometry, tileFloats: device.options.im2colTileFloats) }

    /// Floats of workspace a pass takes with algorithm `a` (for passes that may keep their
    /// transformed kernel, the size when they do not).
    func workspace(_ a: OpenCLConvAlgorithm, _ pass: ConvPass) -> Int {
        let g = geometry
        switch a {
        case .implicitGemm, .gemm1x1: return 0
        case .splitK(let t, let s):
            let splits = splitPlan(t, forced: s).splits
            return splits > 1 ? splits * (g.patchSize * g.outC + g.outC) : 0
        case .winograd(let m, let t):
            let e = kernelGeometry(pass), xi = (m + 2) * (m + 2)
            let chunk = winogradChunk(m, e)
            if pass == .backwardFilter {
                return xi * chunk * (e.ic + e.oc) + winogradFilterSplits(m, t).splits * xi * e.ic * e.oc
            }
            return xi * chunk * (e.ic + e.oc) + xi * e.ic * e.oc
        case .im2colGemm: return im2col.workspace
        case .clblastConvgemm: return g.inCount + g.outCount + g.patchSize * g.outC
        }
    }

    /// Whether CLBlast's convgemm computes this geometry: its padding is the same on both sides.
    var convgemmApplies: Bool {
        let g = geometry
        return g.outH == (g.inH + 2 * g.padTop - g.kH) / g.strideH + 1 && g.outW == (g.inW + 2 * g.padLeft - g.kW) / g.strideW + 1
            && g.inH + 2 * g.padTop >= g.kH && g.inW + 2 * g.padLeft >= g.kW
    }

    // MARK: - Candidates

    var isPointwise: Bool { PointwiseConvolution.applies(geometry) }

    func kernelGeometry(_ pass: ConvPass) -> ConvKernelGeometry {
        pass == .backwardData ? .backwardData(geometry) : .forward(geometry)
    }

    /// Every algorithm the autotune may time for `pass`, the default first.
    func candidates(_ pass: ConvPass) -> [OpenCLConvAlgorithm] {
        let list = candidateSet(pass)
        let first = defaultAlgorithm(pass, among: list)
        return [first] + list.filter { $0 != first }
    }

    /// The algorithm a pass runs without an autotune: Winograd F(4x4) (or F(2x2) on small
    /// images) for 3x3 stride-1 layers with enough channels on a GPU, implicit GEMM for other
    /// forward passes and stride-1 backward-data, im2col + col2im for strided backward-data
    /// (the transposed implicit GEMM multiplies by the zeros of the dilation), split-K for the
    /// kernel gradient. Tiles: the device table's first shape among those that pad the GEMM least.
    func defaultAlgorithm(_ pass: ConvPass) -> OpenCLConvAlgorithm {
        defaultAlgorithm(pass, among: candidateSet(pass))
    }

    /// The algorithms that apply to `pass` and that the options allow, in table order.
    private func candidateSet(_ pass: ConvPass) -> [OpenCLConvAlgorithm] {
        let e = kernelGeometry(pass)
        let generic: [OpenCLConvAlgorithm] = isPointwise ? [.gemm1x1] : [.im2colGemm]
        func winograd(_ ms: [Int]) -> [OpenCLConvAlgorithm] {
            e.winogradApplies ? ms.map { .winograd(m: $0, winogradTile($0, e, pass)) } : []
        }
        var list: [OpenCLConvAlgorithm]
        switch pass {
        case .forward, .backwardData:
            let implicit = gemmTiles(pass).map { OpenCLConvAlgorithm.implicitGemm($0) }
            let convgemm: [OpenCLConvAlgorithm] = pass == .forward && convgemmApplies && !isPointwise ? [.clblastConvgemm] : []
            switch ctx.options.family {
            case .auto: list = implicit + winograd([4, 2]) + generic + convgemm
            case .implicit: list = implicit
            case .winograd2: list = winograd([2])
            case .winograd4: list = winograd([4])
            case .im2col: list = generic
            case .clblast: list = convgemm.isEmpty ? generic : convgemm
            }
        case .backwardFilter:
            let splitK = gemmTiles(pass).map { OpenCLConvAlgorithm.splitK($0, splits: nil) }
            switch ctx.options.family {
            case .auto: list = splitK + winograd([4, 2]) + generic
            case .im2col, .clblast: list = generic
            case .implicit: list = splitK
            case .winograd2: list = winograd([2])
            case .winograd4: list = winograd([4])
            }
        }
        return list.isEmpty ? generic : list
    }

    /// The device's tile shapes that suit a pass's GEMM: those the kernel can stage, without
    /// the ones that pad the GEMM to more than 1.5x the least padded shape (a 128-wide tile on
    /// 64 channels computes twice the work; the autotune need not build and time it).
    private func gemmTiles(_ pass: ConvPass) -> [ConvTile] {
        let g = geometry
        let tiles = pass == .backwardFilter ? ctx.tiles.filter(\.fitsColumnStaging) : ctx.tiles
        let (m, n) = pass == .forward ? (g.outPixels, g.outC)
            : pass == .backwardData ? (g.batch * g.inH * g.inW, g.inC) : (g.patchSize, g.outC)
        func padded(_ t: ConvTile) -> Double {
            Double((m + t.tm - 1) / t.tm * t.tm) * Double((n + t.tn - 1) / t.tn * t.tn)
        }
        guard let least = tiles.map(padded).min() else { return [] }
        return tiles.filter { padded($0) <= 1.5 * least }
    }

    private func defaultAlgorithm(_ pass: ConvPass, among list: [OpenCLConvAlgorithm]) -> OpenCLConvAlgorithm {
        let e = kernelGeometry(pass)
        let g = geometry
        if device.info.type != .cpu, e.ic >= 16, e.oc >= 16 {
            let m = winogradCost(4, e) <= winogradCost(2, e) ? 4 : 2
            if let w = list.first(where: { if case .winograd(m, _) = $0 { return true }; return false }) { return w }
        }
        switch pass {
        case .forward, .backwardData:
            let implicit = list.compactMap { a -> ConvTile? in if case .implicitGemm(let t) = a { return t }; return nil }
            let strided = pass == .backwardData && (g.strideH > 1 || g.strideW > 1)
            if strided, list.contains(.im2colGemm) { return .im2colGemm }
            if !implicit.isEmpty {
                let rows = pass == .forward ? g.outPixels : g.batch * g.inH * g.inW
                return .implicitGemm(leastPadded(implicit, m: rows, n: e.oc))
            }
        case .backwardFilter:
            let tiles = list.compactMap { a -> ConvTile? in if case .splitK(let t, _) = a { return t }; return nil }
            if !tiles.isEmpty { return .splitK(leastPadded(tiles, m: g.patchSize, n: g.outC), splits: nil) }
        }
        return list.first { if case .winograd = $0 { return false }; return true } ?? list[0]
    }

    /// The first tile (in table order) whose padded GEMM is within 10% of the least padded one.
    private func leastPadded(_ tiles: [ConvTile], m: Int, n: Int) -> ConvTile {
        func padded(_ t: ConvTile) -> Double {
            Double((m + t.tm - 1) / t.tm * t.tm) * Double((n + t.tn - 1) / t.tn * t.tn)
        }
        let best = tiles.map(padded).min()!
        return tiles.first { padded($0) <= best * 1.1 }!
    }

    /// Transformed-domain multiplies of a Winograd variant: tiles x (m+2)^2.
    private func winogradCost(_ m: Int, _ e: ConvKernelGeometry) -> Int {
        ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m) * (m + 2) * (m + 2)
    }

    /// The tile of a Winograd pass's GEMMs: (chunk tiles x OC) products, or for the kernel
    /// gradient (IC x OC) sums over tiles, staged by columns.
    private func winogradTile(_ m: Int, _ e: ConvKernelGeometry, _ pass: ConvPass) -> ConvTile {
        if pass == .backwardFilter {
            let tiles = ctx.tiles.filter(\.fitsColumnStaging)
            return tiles.isEmpty ? ctx.tiles[0] : leastPadded(tiles, m: e.ic, n: e.oc)
        }
        let tiles = geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        return leastPadded(ctx.tiles, m: min(tiles, winogradChunk(m, e)), n: e.oc)
    }

    /// Tiles per Winograd chunk: the transformed input and products of a chunk fit the workspace.
    func winogradChunk(_ m: Int, _ e: ConvKernelGeometry) -> Int {
        let tiles = geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        return max(1, min(tiles, ctx.workspaceFloats / ((m + 2) * (m + 2) * max(e.ic, e.oc))))
    }

    /// Splits of the N*OH*OW reduction: about `workGroupsPerUnit` work-groups per compute unit,
    /// at least four reduction steps per split, partial sums within the workspace.
    func splitPlan(_ t: ConvTile, forced: Int?) -> (splits: Int, chunk: Int) {
        let g = geometry
        let p = g.outPixels
        let tiles = ((g.patchSize + t.tm - 1) / t.tm) * ((g.outC + t.tn - 1) / t.tn)
        var s: Int
        if let forced {
            s = max(1, min(forced, p))
        } else {
            let target = device.info.computeUnits * ctx.options.workGroupsPerUnit
            s = max(1, (target + tiles - 1) / tiles)
            s = min(s, max(1, p / (t.tk * 4)))
        }
        s = min(s, max(1, ctx.workspaceFloats / (g.patchSize * g.outC)))
        var chunk = (p + s - 1) / s
        chunk = (chunk + t.tk - 1) / t.tk * t.tk
        s = (p + chunk - 1) / chunk
        return (s, chunk)
    }

    // MARK: - The passes (ConvolutionPlan)

    /// y = conv(x, w) (+ bias) (then ReLU when relu).
    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try geometry.checkForward(on: device, x: x, w: w, bias: bias, y: y)
        if !kernelIsConstant { releaseKeptKernels() }
        try run(.forward) { a in
            try self.forward(using: a, x: x, w: w, bias: bias, relu: relu, y: y, kernelIsConstant: kernelIsConstant)
        }
    }

    /// dx (overwritten) = the gradient with respect to the input.
    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try geometry.checkBackwardData(on: device, dy: dy, w: w, dx: dx)
        if !kernelIsConstant { releaseKeptKernels() }
        try run(.backwardData) { a in try self.backwardData(using: a, dy: dy, w: w, dx: dx, kernelIsConstant: kernelIsConstant) }
    }

    /// dw (HWIO) and db, overwritten.
    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try geometry.checkBackwardFilter(on: device, x: x, dy: dy, dw: dw, db: db)
        releaseKeptKernels()   // a kernel whose gradient is wanted is about to change
        try run(.backwardFilter) { a in try self.backwardFilter(using: a, x: x, dy: dy, dw: dw, db: db) }
    }

    func releaseKeptKernels() { kept = [:] }

    /// Floats of transformed kernels kept now (tests, reports).
    var keptKernelFloats: Int { kept.values.reduce(0) { $0 + $1.kernel.floats } }

    /// The transformed kernel of `w` for `pass` and `algorithm`: kept while the caller says the
    /// kernel is constant (and it is the same tensor at the same version), computed by `fill`
    /// into `scratch` otherwise.
    private func transformedKernel(_ pass: ConvPass, _ algorithm: OpenCLConvAlgorithm, of w: Tensor, constant: Bool, floats: Int,
                                   scratch: () throws -> CLBuffer, fill: (CLBuffer) throws -> Void) throws -> CLBuffer {
        var entry = kept[pass]?.algorithm == algorithm ? kept[pass]!.kernel : KeptKernel()
        defer { kept[pass] = (algorithm, entry) }
        if let b = try entry.transform(of: w, constant: constant, floats: floats, on: device, fill: { try fill(device.mem($0)) }) {
            return device.mem(b)
        }
        let b = try scratch()
        try fill(b)
        return b
    }

    /// Runs `pass` with its chosen algorithm; on first use (autotune on, nothing cached) times
    /// each candidate on these very tensors and keeps the fastest. Every candidate overwrites
    /// the pass's outputs, and the winner runs last, so the call's results are the winner's.
    private func run(_ pass: ConvPass, _ body: (OpenCLConvAlgorithm) throws -> Void) throws {
        if let a = chosen[pass] { return try runOrFallBack(pass, a, body) }
        let list = candidates(pass)
        guard ctx.options.autotune, list.count > 1 else {
            chosen[pass] = list[0]
            return try runOrFallBack(pass, list[0], body)
        }
        var results: [(algorithm: OpenCLConvAlgorithm, seconds: Double)] = []
        for a in list {
            do {
                try body(a)   // builds the kernels, warms the caches
                device.synchronize()
                try device.checkHealthy()
                var best = Double.infinity
                for _ in 0..<3 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try body(a)
                    device.synchronize()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                    if let leader = results.map(\.seconds).min(), best > 3 * leader { break }
                }
                try device.checkHealthy()
                results.append((a, best))
            } catch {
                try device.checkHealthy()   // a device fault is not a candidate's problem: stop
                continue                    // a candidate that cannot build or allocate: skip it
            }
        }
        guard let winner = results.min(by: { $0.seconds < $1.seconds }) else {
            chosen[pass] = list[0]
            return try runOrFallBack(pass, list[0], body)
        }
        chosen[pass] = winner.algorithm
        measurements[pass] = results.sorted { $0.seconds < $1.seconds }.map { (name($0.algorithm, pass), $0.seconds) }
        if let path = device.options.tuneReport { report(pass, to: path) }
        if let cache = ctx.tuningCache {
            cache.store(name(winner.algorithm, pass), key: cache.key(pass: pass.rawValue, geometry: geometry, candidates: list.map { name($0, pass) }))
        }
        if results.last?.algorithm != winner.algorithm { try body(winner.algorithm) }
    }

    /// Appends one line about the autotune of `pass` to the file at `path` (best effort).
    private func report(_ pass: ConvPass, to path: String) {
        let g = geometry
        let shape = "\(g.batch)x\(g.inH)x\(g.inW)x\(g.inC) k\(g.kH)x\(g.kW) s\(g.strideH) -> \(g.outC)"
        let times = (measurements[pass] ?? []).map { String(format: "%@ %.3f ms", $0.name, $0.seconds * 1e3) }
        let line = "\(device.name) \(shape) \(pass.rawValue): " + times.joined(separator: "; ") + "\n"
        guard let handle = FileHandle(forWritingAtPath: path) ?? {
            FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { return }
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        handle.closeFile()
    }

    /// Runs `a`; if its specialised kernels do not build on this driver, says so once and
    /// keeps the generic path (built when the device opened) for this pass from then on.
    private func runOrFallBack(_ pass: ConvPass, _ a: OpenCLConvAlgorithm, _ body: (OpenCLConvAlgorithm) throws -> Void) throws {
        do {
            try body(a)
        } catch VGGTLError.kernelBuild(let file, _, let log) {
            let generic: OpenCLConvAlgorithm = isPointwise ? .gemm1x1 : .im2colGemm
            guard a != generic else { throw VGGTLError.kernelBuild(file: file, device: device.name, log: log) }
            let firstLines = log.split(separator: "\n").prefix(6).joined(separator: "\n  ")
            FileHandle.standardError.write(Data("warning: \(device.name): \(name(a, pass)) (\(file)) did not build; \(pass.rawValue) of \(geometry.kH)x\(geometry.kW) convolution \(geometry.inH)x\(geometry.inW)x\(geometry.inC) -> \(geometry.outC) uses \(name(generic, pass)):\n  \(firstLines)\n".utf8))
            chosen[pass] = generic
            try body(generic)
        }
    }

    // MARK: - Algorithms

    func forward(using a: OpenCLConvAlgorithm, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor,
                 kernelIsConstant: Bool) throws {
        let d = device, g = geometry
        switch a {
        case .implicitGemm(let t):
            try implicitGemm(t, .forward(g), x: d.mem(x.buffer), w: d.mem(w.buffer), bias: bias.map { d.mem($0.buffer) }, relu: relu, y: d.mem(y.buffer))
        case .winograd(let m, let t):
            try winograd(m, t, .forward, x: d.mem(x.buffer), w: w, bias: bias.map { d.mem($0.buffer) }, relu: relu,
                         y: d.mem(y.buffer), kernelIsConstant: kernelIsConstant)
        case .gemm1x1:
            PointwiseConvolution.forward(d, g, x: x, w: w, bias: bias, relu: relu, y: y)
        case .im2colGemm:
            let c = im2col
            c.forward(d, x: x, w: w, bias: bias, relu: relu, y: y, col: try ctx.workspace(.a, floats: c.workspace))
        case .clblastConvgemm:
            try convgemm(x: d.mem(x.buffer), w: w, bias: bias.map { d.mem($0.buffer) }, relu: relu, y: d.mem(y.buffer),
                         kernelIsConstant: kernelIsConstant)
        case .splitK:
            throw VGGTLError.invalidArgument("\(name(a, .forward)) computes kernel gradients, not a forward pass")
        }
    }

    func backwardData(using a: OpenCLConvAlgorithm, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let d = device, g = geometry
        switch a {
        case .implicitGemm(let t):
            try implicitGemm(t, .backwardData(g), x: d.mem(dy.buffer), w: d.mem(w.buffer), bias: nil, relu: false, y: d.mem(dx.buffer))
        case .winograd(let m, let t):
            try winograd(m, t, .backwardData, x: d.mem(dy.buffer), w: w, bias: nil, relu: false, y: d.mem(dx.buffer),
                         kernelIsConstant: kernelIsConstant)
        case .gemm1x1:
            PointwiseConvolution.backwardData(d, g, dy: dy, w: w, dx: dx)
        case .im2colGemm:
            let c = im2col
            c.backwardData(d, dy: dy, w: w, dx: dx, dcol: try ctx.workspace(.a, floats: c.workspace))
        case .splitK, .clblastConvgemm:
            throw VGGTLError.invalidArgument("\(name(a, .backwardData)) has no input-gradient pass")
        }
    }

    func backwardFilter(using a: OpenCLConvAlgorithm, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let d = device, g = geometry
        switch a {
        case .splitK(let t, let s):
            try splitK(t, forced: s, x: d.mem(x.buffer), dy: d.mem(dy.buffer), dw: d.mem(dw.buffer), db: db.map { d.mem($0.buffer) })
            return
        case .gemm1x1:
            PointwiseConvolution.backwardFilter(d, g, x: x, dy: dy, dw: dw)
        case .im2colGemm:
            let c = im2col
            c.backwardFilter(d, x: x, dy: dy, dw: dw, col: try ctx.workspace(.a, floats: c.workspace))
        case .winograd(let m, let t):
            try winogradFilter(m, t, x: d.mem(x.buffer), dy: d.mem(dy.buffer), dw: d.mem(dw.buffer))
        case .implicitGemm, .clblastConvgemm:
            throw VGGTLError.invalidArgument("\(name(a, .backwardFilter)) has no kernel-gradient pass")
        }
        if let db { d.biasGradient(dy.buffer, rows: g.outPixels, channels: g.outC, db: db.buffer, accumulate: false) }
    }

    // MARK: - Launches of the specialised kernels

    private func groupKernel(_ name: String, _ file: String, _ defines: [(String, Int)], _ t: ConvTile) throws -> CLKernel {
        let k = try ctx.kernel(name, file: file, defines: defines + t.defines)
        guard k.maxWorkGroupSize >= t.threads else {
            throw VGGTLError.kernelBuild(file: "Kernels/\(file)", device: device.name,
                                         log: "\(name) with tile \(t) needs work-groups of \(t.threads) but the driver allows \(k.maxWorkGroupSize)")
        }
        return k
    }

    private func implicitGemm(_ t: ConvTile, _ e: ConvKernelGeometry, x: CLBuffer, w: CLBuffer, bias: CLBuffer?, relu: Bool, y: CLBuffer) throws {
        let k = try groupKernel("conv_implicit_gemm", "conv/implicit_gemm.cl", e.defines, t)
        let rows = geometry.batch * e.oh * e.ow
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        device.enqueue(k, global: [(e.oc + t.tn - 1) / t.tn * tx, (rows + t.tm - 1) / t.tm * ty], local: [tx, ty],
                       [x, w, bias ?? y, y, geometry.batch, bias != nil, relu])
    }

    private func splitK(_ t: ConvTile, forced: Int?, x: CLBuffer, dy: CLBuffer, dw: CLBuffer, db: CLBuffer?) throws {
        let g = geometry, e = ConvKernelGeometry.forward(g)
        let k = try groupKernel("conv_filter_split_k", "conv/split_k.cl", e.defines, t)
        let plan = splitPlan(t, forced: forced)
        let q = g.patchSize, count = q * g.outC
        let out = plan.splits == 1 ? dw : try ctx.workspace(.a, floats: plan.splits * count)
        let dbOut = plan.splits == 1 ? (db ?? dw) : try ctx.workspace(.bias, floats: plan.splits * g.outC)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        device.enqueue(k, global: [(g.outC + t.tn - 1) / t.tn * tx, (q + t.tm - 1) / t.tm * ty, plan.splits], local: [tx, ty, 1],
                       [x, dy, out, dbOut, g.batch, plan.chunk, db != nil])
        guard plan.splits > 1 else { return }
        let reduce = try ctx.kernel("split_k_reduce", file: "conv/split_k.cl", defines: e.defines + t.defines)
        self.reduce(reduce, out, splits: plan.splits, count: count, into: dw)
        if let db { self.reduce(reduce, dbOut, splits: plan.splits, count: g.outC, into: db) }
    }

    /// Sums `splits` partial results of `count` floats: work-groups of cols x lanes items, the
    /// lanes (a power of two, each adding at least four splits) along the splits.
    private func reduce(_ kernel: CLKernel, _ partial: CLBuffer, splits: Int, count: Int, into out: CLBuffer) {
        let local = kernel.localSize
        let lanes = powerOfTwo(atMost: max(1, min(local, splits / 4)))
        let cols = local / lanes
        device.enqueue(kernel, global: [(count + cols - 1) / cols * local], local: [local], [partial, splits, count, lanes, out])
    }

    private func convgemm(x: CLBuffer, w: Tensor, bias: CLBuffer?, relu: Bool, y: CLBuffer, kernelIsConstant: Bool) throws {
        let g = geometry
        guard convgemmApplies else {
            throw VGGTLError.invalidArgument("CLBlast's convgemm needs the same padding on both sides, not \(g.padTop),\(g.padLeft) with output \(g.outH)x\(g.outW)")
        }
        let defines = [("IH", g.inH), ("IW", g.inW), ("IC", g.inC), ("KH", g.kH), ("KW", g.kW), ("OH", g.outH), ("OW", g.outW), ("OC", g.outC)]
        let file = "conv/layout.cl"
        let toNCHW = try ctx.kernel("nhwc_to_nchw", file: file, defines: defines)
        let toOIHW = try ctx.kernel("hwio_to_oihw", file: file, defines: defines)
        let toNHWC = try ctx.kernel("nchw_to_nhwc", file: file, defines: defines)
        let wt = try transformedKernel(.forward, .clblastConvgemm, of: w, constant: kernelIsConstant, floats: g.patchSize * g.outC,
                                       scratch: { try ctx.workspace(.kernel, floats: g.patchSize * g.outC) },
                                       fill: { device.launch(toOIHW, g.patchSize * g.outC, device.mem(w.buffer), $0) })
        let xt = try ctx.workspace(.a, floats: g.inCount), yt = try ctx.workspace(.b, floats: g.outCount)
        device.launch(toNCHW, g.inCount, x, xt, g.batch)
        try device.clblastConvgemm(g, image: xt, kernel: wt, result: yt)
        device.launch(toNHWC, g.outCount, yt, bias ?? yt, y, g.batch, bias != nil, relu)
    }

    /// The -D constants of Kernels/conv/winograd.cl for `e` (without the tile shape).
    private func winogradDefines(_ m: Int, _ e: ConvKernelGeometry) throws -> [(String, Int)] {
        guard e.winogradApplies else {
            throw VGGTLError.invalidArgument("Winograd F(\(m)x\(m),3x3) needs a 3x3 stride-1 convolution, not \(geometry.kH)x\(geometry.kW) stride \(geometry.strideH)")
        }
        return [("WINO_M", m), ("IH", e.ih), ("IW", e.iw), ("IC", e.ic), ("OH", e.oh), ("OW", e.ow), ("OC", e.oc),
                ("PH", e.ph), ("PW", e.pw), ("FLIP", e.flip ? 1 : 0)]
    }

    /// Splits of the kernel gradient's tile reduction (per chunk of tiles): about
    /// `workGroupsPerUnit` work-groups per compute unit over the (m+2)^2 GEMMs, at least four
    /// reduction steps per split, partial sums within the workspace.
    func winogradFilterSplits(_ m: Int, _ t: ConvTile) -> (splits: Int, perChunk: Int) {
        let e = ConvKernelGeometry.forward(geometry), xi = (m + 2) * (m + 2)
        let chunk = winogradChunk(m, e)
        let groups = xi * ((e.ic + t.tm - 1) / t.tm) * ((e.oc + t.tn - 1) / t.tn)
        let target = device.info.computeUnits * ctx.options.workGroupsPerUnit
        var s = max(1, (target + groups - 1) / groups)
        s = min(s, max(1, chunk / (t.tk * 4)), max(1, ctx.workspaceFloats / (xi * e.ic * e.oc)))
        var per = (chunk + s - 1) / s
        per = (per + t.tk - 1) / t.tk * t.tk
        return ((chunk + per - 1) / per, per)
    }

    /// dw by Winograd: per chunk of tiles, V = B^T d B of x and dM = A dY A^T of dy, then
    /// dU += V^T dM per (m+2)^2 point (split over tiles); finally dw = G^T dU G.
    private func winogradFilter(_ m: Int, _ t: ConvTile, x: CLBuffer, dy: CLBuffer, dw: CLBuffer) throws {
        let e = ConvKernelGeometry.forward(geometry)
        let defines = try winogradDefines(m, e)
        let file = "conv/winograd.cl"
        guard t.fitsColumnStaging else {
            throw VGGTLError.invalidArgument("tile \(t) cannot stage the Winograd kernel gradient's GEMMs (work items must cover its rows)")
        }
        let gemm = try groupKernel("winograd_filter_gemm", file, defines, t)
        let all = defines + t.defines
        let inputTransform = try ctx.kernel("winograd_input_transform", file: file, defines: all)
        let gradTransform = try ctx.kernel("winograd_grad_output_transform", file: file, defines: all)
        let finish = try ctx.kernel("winograd_filter_finish", file: file, defines: all)
        let xi = (m + 2) * (m + 2)
        let tiles = geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        let chunk = winogradChunk(m, e)
        let split = winogradFilterSplits(m, t)
        let v = try ctx.workspace(.a, floats: xi * chunk * e.ic)
        let dm = try ctx.workspace(.b, floats: xi * chunk * e.oc)
        let partial = try ctx.workspace(.kernel, floats: split.splits * xi * e.ic * e.oc)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        for (i, t0) in stride(from: 0, to: tiles, by: chunk).enumerated() {
            let n = min(chunk, tiles - t0)
            // The last chunk may be shorter: the same splits, fewer tiles each.
            let per = ((n + split.splits - 1) / split.splits + t.tk - 1) / t.tk * t.tk
            device.launch(inputTransform, n * e.ic, x, v, t0, n)
            device.launch(gradTransform, n * e.oc, dy, dm, t0, n)
            device.enqueue(gemm, global: [(e.oc + t.tn - 1) / t.tn * tx, (e.ic + t.tm - 1) / t.tm * ty, xi * split.splits],
                           local: [tx, ty, 1], [v, dm, partial, n, split.splits, per, i > 0])
        }
        device.launch(finish, e.ic * e.oc, partial, split.splits, dw)
    }

    private func winograd(_ m: Int, _ t: ConvTile, _ pass: ConvPass, x: CLBuffer, w: Tensor, bias: CLBuffer?, relu: Bool, y: CLBuffer,
                          kernelIsConstant: Bool) throws {
        let e = kernelGeometry(pass)
        let defines = try winogradDefines(m, e)
        let file = "conv/winograd.cl"
        let gemm = try groupKernel("winograd_batched_gemm", file, defines, t)
        let all = defines + t.defines
        let kernelTransform = try ctx.kernel("winograd_kernel_transform", file: file, defines: all)
        let inputTransform = try ctx.kernel("winograd_input_transform", file: file, defines: all)
        let outputTransform = try ctx.kernel("winograd_output_transform", file: file, defines: all)
        let xi = (m + 2) * (m + 2)
        let algorithm = OpenCLConvAlgorithm.winograd(m: m, t)

        // U = G g G^T per channel pair: kept across calls while the caller says w is unchanged.
        let u = try transformedKernel(pass, algorithm, of: w, constant: kernelIsConstant, floats: xi * e.ic * e.oc,
                                      scratch: { try ctx.workspace(.kernel, floats: xi * e.ic * e.oc) },
                                      fill: { device.launch(kernelTransform, e.ic * e.oc, device.mem(w.buffer), $0) })

        let tiles = geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        let chunk = winogradChunk(m, e)
        let v = try ctx.workspace(.a, floats: xi * chunk * e.ic)
        let p = try ctx.workspace(.b, floats: xi * chunk * e.oc)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        for t0 in stride(from: 0, to: tiles, by: chunk) {
            let n = min(chunk, tiles - t0)
            device.launch(inputTransform, n * e.ic, x, v, t0, n)
            device.enqueue(gemm, global: [(e.oc + t.tn - 1) / t.tn * tx, (n + t.tm - 1) / t.tm * ty, xi], local: [tx, ty, 1],
                           [v, u, p, n])
            device.launch(outputTransform, n * e.oc, p, bias ?? p, y, t0, n, bias != nil, relu)
        }
    }
}

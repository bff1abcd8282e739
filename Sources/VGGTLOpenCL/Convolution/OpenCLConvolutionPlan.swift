import Foundation
import VGGTLTensors

/// One way of computing passes of a convolution on an OpenCL device (Algorithms/, and the
/// generic PointwiseGemm and Im2colGemm).
typealias OpenCLConvAlgorithm = any ConvolutionAlgorithm<OpenCLConvContext>

/// How one convolution geometry runs on one OpenCL device: an algorithm per pass, chosen among
/// candidates (a first-use autotune on GPUs, cached on disk; defaults from the geometry and the
/// device otherwise), with each pass's name and workspace.
final class OpenCLConvolutionPlan: ConvolutionPlan {
    let context: OpenCLConvContext
    var geometry: WindowGeometry { context.geometry }
    var device: OpenCLDevice { context.device }
    private var kernels: OpenCLConvolutionKernels { context.kernels }
    private var chosen: [ConvPass: OpenCLConvAlgorithm] = [:]
    /// Seconds per candidate from the autotune, fastest first (empty when none ran).
    private(set) var measurements: [ConvPass: [(name: String, seconds: Double)]] = [:]

    init(device: OpenCLDevice, geometry: WindowGeometry) {
        context = OpenCLConvContext(geometry: geometry, device: device, kernels: device.convolutionKernels, kept: KeptKernels())
        if kernels.options.autotune, let cache = kernels.tuningCache {
            for pass in ConvPass.allCases {
                let c = candidates(pass)
                guard c.count > 1, let name = cache.load(cache.key(pass: pass.rawValue, geometry: geometry, candidates: c.map { self.name($0, pass) })),
                      let a = c.first(where: { self.name($0, pass) == name }) else { continue }
                chosen[pass] = a
                recordTuned(pass, a)
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

    func name(_ a: OpenCLConvAlgorithm, _ pass: ConvPass) -> String { a.name(pass, context) }

    /// Floats of workspace a pass takes with algorithm `a`.
    func workspace(_ a: OpenCLConvAlgorithm, _ pass: ConvPass) -> Int { a.workspace(pass, context) }

    // MARK: - Candidates

    /// Every algorithm the autotune may time for `pass`, the default first.
    func candidates(_ pass: ConvPass) -> [OpenCLConvAlgorithm] {
        let list = candidateSet(pass)
        let first = defaultAlgorithm(pass, among: list)
        return [first] + list.filter { !$0.isSame(as: first) }
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
        let c = context
        let generic = [c.generic]
        func winograd(_ ms: [Int]) -> [OpenCLConvAlgorithm] {
            c.kernelGeometry(pass).winogradApplies ? ms.map { OpenCLWinograd(m: $0, tile: winogradTile($0, pass)) } : []
        }
        var list: [OpenCLConvAlgorithm]
        switch pass {
        case .forward, .backwardData:
            let implicit: [OpenCLConvAlgorithm] = gemmTiles(pass).map { ImplicitGemm(tile: $0) }
            let convgemm: [OpenCLConvAlgorithm] = [CLBlastConvgemm()].filter { $0.supports(pass, c) }
            switch c.options.family {
            case .auto: list = implicit + winograd([4, 2]) + generic + convgemm
            case .implicit: list = implicit
            case .winograd2: list = winograd([2])
            case .winograd4: list = winograd([4])
            case .im2col: list = generic
            case .clblast: list = convgemm.isEmpty ? generic : convgemm
            }
        case .backwardFilter:
            let splitK: [OpenCLConvAlgorithm] = gemmTiles(pass).map { SplitK(tile: $0) }
            switch c.options.family {
            case .auto: list = splitK + winograd([4, 2]) + generic
            case .im2col, .clblast: list = generic
            case .implicit: list = splitK
            case .winograd2: list = winograd([2])
            case .winograd4: list = winograd([4])
            }
        }
        return list.isEmpty ? generic : list
    }

    private func defaultAlgorithm(_ pass: ConvPass, among list: [OpenCLConvAlgorithm]) -> OpenCLConvAlgorithm {
        let e = context.kernelGeometry(pass)
        let g = geometry
        if device.info.type != .cpu, e.ic >= 16, e.oc >= 16 {
            let m = Winograd.fewestMultiplies(outH: e.oh, outW: e.ow)
            if let w = list.first(where: { ($0 as? OpenCLWinograd)?.m == m }) { return w }
        }
        switch pass {
        case .forward, .backwardData:
            let implicit = list.compactMap { ($0 as? ImplicitGemm)?.tile }
            let strided = pass == .backwardData && (g.strideH > 1 || g.strideW > 1)
            if strided, let generic = list.first(where: { $0 is Im2colGemm<OpenCLConvContext> }) { return generic }
            if !implicit.isEmpty {
                let rows = pass == .forward ? g.outPixels : g.batch * g.inH * g.inW
                return ImplicitGemm(tile: leastPadded(implicit, m: rows, n: e.oc))
            }
        case .backwardFilter:
            let tiles = list.compactMap { ($0 as? SplitK)?.tile }
            if !tiles.isEmpty { return SplitK(tile: leastPadded(tiles, m: g.patchSize, n: g.outC)) }
        }
        return list.first { !($0 is OpenCLWinograd) } ?? list[0]
    }

    /// The device's tile shapes that suit a pass's GEMM: those the kernel can stage, without
    /// the ones that pad the GEMM to more than 1.5x the least padded shape (a 128-wide tile on
    /// 64 channels computes twice the work; the autotune need not build and time it).
    private func gemmTiles(_ pass: ConvPass) -> [ConvTile] {
        let g = geometry
        let tiles = pass == .backwardFilter ? kernels.tiles.filter(\.fitsColumnStaging) : kernels.tiles
        let (m, n) = pass == .forward ? (g.outPixels, g.outC)
            : pass == .backwardData ? (g.batch * g.inH * g.inW, g.inC) : (g.patchSize, g.outC)
        guard let least = tiles.map({ $0.paddedWork(m: m, n: n) }).min() else { return [] }
        return tiles.filter { $0.paddedWork(m: m, n: n) <= 1.5 * least }
    }

    /// The first tile (in table order) whose padded GEMM is within 10% of the least padded one.
    private func leastPadded(_ tiles: [ConvTile], m: Int, n: Int) -> ConvTile {
        let best = tiles.map { $0.paddedWork(m: m, n: n) }.min()!
        return tiles.first { $0.paddedWork(m: m, n: n) <= best * 1.1 }!
    }

    /// The tile of a Winograd pass's GEMMs: (chunk tiles x OC) products, or for the kernel
    /// gradient (IC x OC) sums over tiles, staged by columns.
    private func winogradTile(_ m: Int, _ pass: ConvPass) -> ConvTile {
        let e = context.kernelGeometry(pass)
        if pass == .backwardFilter {
            let tiles = kernels.tiles.filter(\.fitsColumnStaging)
            return tiles.isEmpty ? kernels.tiles[0] : leastPadded(tiles, m: e.ic, n: e.oc)
        }
        let chunk = OpenCLWinograd.chunk(m: m, context, e)
        let tiles = geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        return leastPadded(kernels.tiles, m: min(tiles, chunk), n: e.oc)
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

    /// One pass with algorithm `a`, whatever the plan chose (the autotune, tests).
    func forward(using a: OpenCLConvAlgorithm, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor,
                 kernelIsConstant: Bool) throws {
        try a.forward(context, x: x, w: w, bias: bias, relu: relu, y: y, kernelIsConstant: kernelIsConstant)
    }

    func backwardData(using a: OpenCLConvAlgorithm, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try a.backwardData(context, dy: dy, w: w, dx: dx, kernelIsConstant: kernelIsConstant)
    }

    func backwardFilter(using a: OpenCLConvAlgorithm, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try a.backwardFilter(context, x: x, dy: dy, dw: dw, db: db)
    }

    func releaseKeptKernels() { context.kept.release() }

    /// Floats of transformed kernels kept now (tests, reports).
    var keptKernelFloats: Int { context.kept.floats }

    // MARK: - Choosing at first use

    /// Runs `pass` with its chosen algorithm; on first use (autotune on, nothing cached) times
    /// each candidate on these very tensors and keeps the fastest. Every candidate overwrites
    /// the pass's outputs, and the winner runs last, so the call's results are the winner's.
    private func run(_ pass: ConvPass, _ body: (OpenCLConvAlgorithm) throws -> Void) throws {
        if let a = chosen[pass] { return try runOrFallBack(pass, a, body) }
        let list = candidates(pass)
        guard kernels.options.autotune, list.count > 1 else {
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
        recordTuned(pass, winner.algorithm)
        measurements[pass] = results.sorted { $0.seconds < $1.seconds }.map { (name($0.algorithm, pass), $0.seconds) }
        if let path = device.options.tuneReport { report(pass, to: path) }
        if let cache = kernels.tuningCache {
            cache.store(name(winner.algorithm, pass), key: cache.key(pass: pass.rawValue, geometry: geometry, candidates: list.map { name($0, pass) }))
        }
        if let last = results.last?.algorithm, !last.isSame(as: winner.algorithm) { try body(winner.algorithm) }
    }

    /// Tells the device what the autotune chose, for its tuning-table entry.
    private func recordTuned(_ pass: ConvPass, _ a: OpenCLConvAlgorithm) {
        let tiled = a as? TiledConvolution
        kernels.recordTuned(pass, geometry, TunedChoice(kind: tiled?.kind ?? name(a, pass), tile: tiled?.tile))
    }

    /// Appends one line about the autotune of `pass` to the file at `path` (best effort).
    private func report(_ pass: ConvPass, to path: String) {
        let g = geometry
        let shape = "\(g.batch)x\(g.inH)x\(g.inW)x\(g.inC) k\(g.kH)x\(g.kW) s\(g.strideH) -> \(g.outC)"
        let times = (measurements[pass] ?? []).map { String(format: "%@ %.3f ms", $0.name, $0.seconds * 1e3) }
        let line = "\(device.name) \(shape) \(pass.rawValue): " + times.joined(separator: "; ") + "\n"
        guard let handle = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
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
            let generic = context.generic
            guard !a.isSame(as: generic) else { throw VGGTLError.kernelBuild(file: file, device: device.name, log: log) }
            let firstLines = log.split(separator: "\n").prefix(6).joined(separator: "\n  ")
            FileHandle.standardError.write(Data("warning: \(device.name): \(name(a, pass)) (\(file)) did not build; \(pass.rawValue) of \(geometry.kH)x\(geometry.kW) convolution \(geometry.inH)x\(geometry.inW)x\(geometry.inC) -> \(geometry.outC) uses \(name(generic, pass)):\n  \(firstLines)\n".utf8))
            chosen[pass] = generic
            try body(generic)
        }
    }
}

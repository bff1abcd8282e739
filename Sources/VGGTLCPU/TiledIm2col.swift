import Dispatch
import VGGTLTensors

/// im2col + GEMM on the CPU in small per-thread tiles: each thread builds the columns of a few
/// thousand output pixels in its own L2-sized buffer, multiplies them with single-threaded
/// OpenBLAS, and adds the bias and ReLU while the tile is still in cache. For layers Winograd
/// does not take (VGG's first layer with 3 input channels, strided or non-'same' windows) this
/// avoids whole-output passes for bias and ReLU and keeps the column matrix out of memory.
/// Forward and backward-filter; backward-data takes the generic path's col2im.
struct TiledIm2col: ConvolutionAlgorithm {
    func supports(_ pass: ConvPass, _ c: CPUConvContext) -> Bool { pass != .backwardData }
    func name(_ pass: ConvPass, _ c: CPUConvContext) -> String { Self.name(c.geometry) }

    func workspace(_ pass: ConvPass, _ c: CPUConvContext) -> Int {
        switch pass {
        case .forward: return Self.forwardWorkspace(c.geometry, threads: c.device.threads)
        case .backwardData: return 0
        case .backwardFilter: return Self.backwardFilterWorkspace(c.geometry, threads: c.device.threads)
        }
    }

    func forward(_ c: CPUConvContext, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try Self.forward(device: c.device, x: x.buffer, w: w.buffer, bias: bias?.buffer, relu: relu, y: y.buffer, c.geometry)
    }

    func backwardFilter(_ c: CPUConvContext, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try Self.backwardFilter(device: c.device, x: x.buffer, dy: dy.buffer, dw: dw.buffer, c.geometry)
        biasGradient(c.device, c.geometry, dy: dy, db: db)
    }

    static func name(_ g: WindowGeometry) -> String { "im2col-gemm-per-thread(tile \(tileRows(g)) rows)" }

    static func tileRows(_ g: WindowGeometry) -> Int {
        // Columns and output of one tile within about 1 MB.
        max(64, min(4096, (256 << 10) / (g.patchSize + g.outC)))
    }

    static func perThread(_ g: WindowGeometry) -> Int { (tileRows(g) * g.patchSize + 15) & ~15 }

    /// Threads that share the tiles of g.
    static func workers(_ g: WindowGeometry, threads: Int) -> Int {
        min(threads, (g.outPixels + tileRows(g) - 1) / tileRows(g))
    }

    /// Floats of per-thread partial dw (backward-filter).
    static func partial(_ g: WindowGeometry) -> Int { (g.patchSize * g.outC + 15) & ~15 }

    static func forwardWorkspace(_ g: WindowGeometry, threads: Int) -> Int { workers(g, threads: threads) * perThread(g) }
    static func backwardFilterWorkspace(_ g: WindowGeometry, threads: Int) -> Int {
        workers(g, threads: threads) * (perThread(g) + partial(g))
    }

    static func forward(device: CPUDevice, x xb: DeviceBuffer, w wb: DeviceBuffer, bias: DeviceBuffer?, relu: Bool,
                        y yb: DeviceBuffer, _ g: WindowGeometry) throws {
        let tile = tileRows(g), tiles = (g.outPixels + tile - 1) / tile
        let workers = Self.workers(g, threads: device.threads)
        let scratch = try device.workspacePointer(forwardWorkspace(g, threads: device.threads))
        let x = cpu(xb), w = cpu(wb), y = cpu(yb), b = bias.map { cpu($0) }
        let k = g.outC, patch = g.patchSize, blas = device.blas
        if workers > 1 { blas.setThreadCount(1) }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let col = scratch + worker * perThread(g)
            var t = worker
            while t < tiles {
                let row0 = t * tile, rows = min(tile, g.outPixels - row0)
                device.im2col(x, g, row0: row0, rows: rows, col: col, threads: 1)
                let out = y + row0 * k
                blas.sgemm(101, 111, 111, Int32(rows), Int32(k), Int32(patch), 1, col, Int32(patch), w, Int32(k), 0, out, Int32(k))
                if let b {
                    for r in 0..<rows {
                        let o = out + r * k
                        if relu { for j in 0..<k { o[j] = max(o[j] + b[j], 0) } } else { for j in 0..<k { o[j] += b[j] } }
                    }
                } else if relu {
                    for i in 0..<(rows * k) { out[i] = max(out[i], 0) }
                }
                t += workers
            }
        }
        if workers > 1 { blas.setThreadCount(device.threads) }
    }

    /// dw = sum over tiles of col^T dy, each thread accumulating its own partial sum.
    static func backwardFilter(device: CPUDevice, x xb: DeviceBuffer, dy dyb: DeviceBuffer, dw dwb: DeviceBuffer,
                               _ g: WindowGeometry) throws {
        let tile = tileRows(g), tiles = (g.outPixels + tile - 1) / tile
        let workers = Self.workers(g, threads: device.threads)
        let k = g.outC, patch = g.patchSize, blas = device.blas
        let partial = Self.partial(g)
        let scratch = try device.workspacePointer(backwardFilterWorkspace(g, threads: device.threads))
        let x = cpu(xb), dy = cpu(dyb), dw = cpu(dwb)
        if workers > 1 { blas.setThreadCount(1) }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let col = scratch + worker * (perThread(g) + partial)
            let acc = worker == 0 ? dw : col + perThread(g)
            var t = worker, first = true
            while t < tiles {
                let row0 = t * tile, rows = min(tile, g.outPixels - row0)
                device.im2col(x, g, row0: row0, rows: rows, col: col, threads: 1)
                blas.sgemm(101, 112, 111, Int32(patch), Int32(k), Int32(rows), 1, col, Int32(patch), dy + row0 * k, Int32(k),
                           first ? 0 : 1, acc, Int32(k))
                first = false
                t += workers
            }
        }
        if workers > 1 { blas.setThreadCount(device.threads) }
        for worker in 1..<max(workers, 1) {
            let acc = scratch + worker * (perThread(g) + partial) + perThread(g)
            for i in 0..<(patch * k) { dw[i] += acc[i] }
        }
    }
}

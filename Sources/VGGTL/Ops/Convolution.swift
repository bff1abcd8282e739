import Foundation

/// Convolution over NHWC input with HWIO kernels, as im2col tiles times the kernel matrix.
/// Written once on top of the device primitives (im2col, col2imAdd, gemm).
public enum Convolution {
    /// The algorithm a geometry runs on a device, named so benchmarks can print it.
    public static func algorithm(_ g: WindowGeometry, on device: Device? = nil) -> String {
        if isPointwise(g) { return "gemm-1x1" }
        if let v = winograd(g, device) { return v.name }
        if device is CPUDevice, convolutionAlgorithm != .im2colWholeTile { return "im2col-gemm-per-thread(tile \(TiledIm2col.tileRows(g)) rows)" }
        return "im2col-gemm(tile \(tileRows(g)) rows)"
    }

    /// The Winograd variant for this geometry on this device, or nil for im2col + GEMM.
    /// Winograd runs on the CPU device for 3x3 stride-1 'same' convolutions (OpenCL uses im2col).
    static func winograd(_ g: WindowGeometry, _ device: Device?) -> Winograd.Variant? {
        guard device is CPUDevice, Winograd.applies(g) else { return nil }
        switch convolutionAlgorithm {
        case .im2col, .im2colWholeTile: return nil
        case .winograd2: return Winograd.f2
        case .winograd4: return Winograd.f4
        case .auto: return Winograd.variant(g)
        }
    }

    static func isPointwise(_ g: WindowGeometry) -> Bool {
        g.kH == 1 && g.kW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0
    }

    static func tileRows(_ g: WindowGeometry) -> Int {
        max(1, min(g.outPixels, convolutionTileFloats / g.patchSize))
    }

    /// y = conv(x, w) (+ bias) (then ReLU when `relu`). y has shape (batch, outH, outW, outC).
    public static func forward(x: Tensor, w: Tensor, bias: Tensor?, y: Tensor, relu: Bool = false, _ g: WindowGeometry) throws {
        let d = x.device
        if let v = winograd(g, d), let cpuDevice = d as? CPUDevice {
            try Winograd.run(v, device: cpuDevice, x: x.buffer, w: w.buffer, bias: bias?.buffer, relu: relu,
                             y: y.buffer, g, flip: false)
            return
        }
        if !isPointwise(g), convolutionAlgorithm != .im2colWholeTile, let cpuDevice = d as? CPUDevice {
            try TiledIm2col.forward(device: cpuDevice, x: x.buffer, w: w.buffer, bias: bias?.buffer, relu: relu, y: y.buffer, g)
            return
        }
        if isPointwise(g) {
            d.gemm(transA: false, transB: false, m: g.outPixels, n: g.outC, k: g.inC, alpha: 1,
                   a: x.buffer, aOffset: 0, lda: g.inC, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: y.buffer, cOffset: 0, ldc: g.outC)
        } else {
            let tile = tileRows(g)
            let col = try Workspace.of(d).get(tile * g.patchSize, on: d)
            for row0 in stride(from: 0, to: g.outPixels, by: tile) {
                let rows = min(tile, g.outPixels - row0)
                d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
                d.gemm(transA: false, transB: false, m: rows, n: g.outC, k: g.patchSize, alpha: 1,
                       a: col, aOffset: 0, lda: g.patchSize, b: w.buffer, bOffset: 0, ldb: g.outC,
                       beta: 0, c: y.buffer, cOffset: row0 * g.outC, ldc: g.outC)
            }
        }
        if let bias { d.addBias(y.buffer, bias: bias.buffer, rows: g.outPixels, channels: g.outC) }
        if relu { d.relu(y.buffer, y.buffer, count: g.outCount) }
    }

    /// dx = the gradient with respect to the input (overwritten).
    public static func backwardData(dy: Tensor, w: Tensor, dx: Tensor, _ g: WindowGeometry) throws {
        let d = dy.device
        if let v = winograd(g, d), let cpuDevice = d as? CPUDevice {
            try Winograd.run(v, device: cpuDevice, x: dy.buffer, w: w.buffer, bias: nil, relu: false,
                             y: dx.buffer, g, flip: true)
            return
        }
        if isPointwise(g) {
            d.gemm(transA: false, transB: true, m: g.outPixels, n: g.inC, k: g.outC, alpha: 1,
                   a: dy.buffer, aOffset: 0, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: dx.buffer, cOffset: 0, ldc: g.inC)
            return
        }
        dx.zero()
        let tile = tileRows(g)
        let dcol = try Workspace.of(d).get(tile * g.patchSize, on: d)
        for row0 in stride(from: 0, to: g.outPixels, by: tile) {
            let rows = min(tile, g.outPixels - row0)
            d.gemm(transA: false, transB: true, m: rows, n: g.patchSize, k: g.outC, alpha: 1,
                   a: dy.buffer, aOffset: row0 * g.outC, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: dcol, cOffset: 0, ldc: g.patchSize)
            d.col2imAdd(dcol, g, row0: row0, rows: rows, dx: dx.buffer)
        }
    }

    /// dw (HWIO) and db, overwritten.
    public static func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?, _ g: WindowGeometry) throws {
        let d = x.device
        if let v = winograd(g, d), let cpuDevice = d as? CPUDevice {
            try Winograd.filterGradient(v, device: cpuDevice, x: x.buffer, dy: dy.buffer, dw: dw.buffer, g)
        } else if !isPointwise(g), convolutionAlgorithm != .im2colWholeTile, let cpuDevice = d as? CPUDevice {
            try TiledIm2col.backwardFilter(device: cpuDevice, x: x.buffer, dy: dy.buffer, dw: dw.buffer, g)
        } else if isPointwise(g) {
            d.gemm(transA: true, transB: false, m: g.inC, n: g.outC, k: g.outPixels, alpha: 1,
                   a: x.buffer, aOffset: 0, lda: g.inC, b: dy.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: dw.buffer, cOffset: 0, ldc: g.outC)
        } else {
            let tile = tileRows(g)
            let col = try Workspace.of(d).get(tile * g.patchSize, on: d)
            for row0 in stride(from: 0, to: g.outPixels, by: tile) {
                let rows = min(tile, g.outPixels - row0)
                d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
                d.gemm(transA: true, transB: false, m: g.patchSize, n: g.outC, k: rows, alpha: 1,
                       a: col, aOffset: 0, lda: g.patchSize, b: dy.buffer, bOffset: row0 * g.outC, ldb: g.outC,
                       beta: row0 == 0 ? 0 : 1, c: dw.buffer, cOffset: 0, ldc: g.outC)
            }
        }
        if let db { d.biasGradient(dy.buffer, rows: g.outPixels, channels: g.outC, db: db.buffer, accumulate: false) }
    }
}

/// Which convolution algorithm 3x3 stride-1 'same' layers use on the CPU (benchmarks and
/// tests set it; `VGGTL_CONV=im2col|winograd2|winograd4` sets it for a run). `im2col` on the CPU
/// is per-thread tiles with fused bias and ReLU; `im2colWholeTile` is the device-generic path
/// (big tiles through the Device primitives, as on OpenCL).
public enum ConvolutionAlgorithm: String, Sendable { case auto, im2col, im2colWholeTile, winograd2, winograd4 }
public var convolutionAlgorithm: ConvolutionAlgorithm =
    ProcessInfo.processInfo.environment["VGGTL_CONV"].flatMap(ConvolutionAlgorithm.init(rawValue:)) ?? .auto

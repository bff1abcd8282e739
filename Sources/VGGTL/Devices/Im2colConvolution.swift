/// Convolution algorithms written once on the Device primitives (im2col, gemm, col2imAdd,
/// addBias, relu), for any device and any geometry: each device's plan falls back to them where
/// its own algorithms do not apply.

/// 1x1 stride-1 unpadded convolution: NHWC input is already the (pixels x C) matrix, so each
/// pass is one GEMM.
enum PointwiseConvolution {
    static let name = "gemm-1x1"

    static func applies(_ g: WindowGeometry) -> Bool {
        g.kH == 1 && g.kW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0
            && g.outH == g.inH && g.outW == g.inW
    }

    static func forward(_ d: Device, _ g: WindowGeometry, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor) {
        d.gemm(transA: false, transB: false, m: g.outPixels, n: g.outC, k: g.inC, alpha: 1,
               a: x.buffer, aOffset: 0, lda: g.inC, b: w.buffer, bOffset: 0, ldb: g.outC,
               beta: 0, c: y.buffer, cOffset: 0, ldc: g.outC)
        biasAndReLU(d, g, bias: bias, relu: relu, y: y)
    }

    static func backwardData(_ d: Device, _ g: WindowGeometry, dy: Tensor, w: Tensor, dx: Tensor) {
        d.gemm(transA: false, transB: true, m: g.outPixels, n: g.inC, k: g.outC, alpha: 1,
               a: dy.buffer, aOffset: 0, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
               beta: 0, c: dx.buffer, cOffset: 0, ldc: g.inC)
    }

    static func backwardFilter(_ d: Device, _ g: WindowGeometry, x: Tensor, dy: Tensor, dw: Tensor) {
        d.gemm(transA: true, transB: false, m: g.inC, n: g.outC, k: g.outPixels, alpha: 1,
               a: x.buffer, aOffset: 0, lda: g.inC, b: dy.buffer, bOffset: 0, ldb: g.outC,
               beta: 0, c: dw.buffer, cOffset: 0, ldc: g.outC)
    }
}

/// im2col + GEMM in tiles of output rows, through the device's primitives: the column matrix of
/// `tileRows` output pixels at a time lives in the workspace (a whole im2col of block1_conv2 at
/// batch 32 would be 3.7 GB). Backward-data multiplies dy by the kernel into column tiles and
/// scatters them back with col2imAdd.
struct Im2colConvolution {
    let geometry: WindowGeometry
    let tileRows: Int

    /// Tiles of at most `tileFloats` column floats (at least one row).
    init(_ g: WindowGeometry, tileFloats: Int) {
        geometry = g
        tileRows = max(1, min(g.outPixels, tileFloats / g.patchSize))
    }

    var forwardName: String { "im2col-gemm(tile \(tileRows) rows)" }
    var backwardDataName: String { "gemm-col2im(tile \(tileRows) rows)" }
    var backwardFilterName: String { "im2col-gemm(tile \(tileRows) rows)" }
    /// Floats of workspace every pass takes: one column tile.
    var workspace: Int { tileRows * geometry.patchSize }

    private func tiles(_ body: (_ row0: Int, _ rows: Int) -> Void) {
        for row0 in stride(from: 0, to: geometry.outPixels, by: tileRows) {
            body(row0, min(tileRows, geometry.outPixels - row0))
        }
    }

    func forward(_ d: Device, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, col: DeviceBuffer) {
        let g = geometry
        tiles { row0, rows in
            d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
            d.gemm(transA: false, transB: false, m: rows, n: g.outC, k: g.patchSize, alpha: 1,
                   a: col, aOffset: 0, lda: g.patchSize, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: y.buffer, cOffset: row0 * g.outC, ldc: g.outC)
        }
        biasAndReLU(d, g, bias: bias, relu: relu, y: y)
    }

    func backwardData(_ d: Device, dy: Tensor, w: Tensor, dx: Tensor, dcol: DeviceBuffer) {
        let g = geometry
        d.fill(dx.buffer, value: 0, offset: 0, count: g.inCount)
        tiles { row0, rows in
            d.gemm(transA: false, transB: true, m: rows, n: g.patchSize, k: g.outC, alpha: 1,
                   a: dy.buffer, aOffset: row0 * g.outC, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: dcol, cOffset: 0, ldc: g.patchSize)
            d.col2imAdd(dcol, g, row0: row0, rows: rows, dx: dx.buffer)
        }
    }

    func backwardFilter(_ d: Device, x: Tensor, dy: Tensor, dw: Tensor, col: DeviceBuffer) {
        let g = geometry
        tiles { row0, rows in
            d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
            d.gemm(transA: true, transB: false, m: g.patchSize, n: g.outC, k: rows, alpha: 1,
                   a: col, aOffset: 0, lda: g.patchSize, b: dy.buffer, bOffset: row0 * g.outC, ldb: g.outC,
                   beta: row0 == 0 ? 0 : 1, c: dw.buffer, cOffset: 0, ldc: g.outC)
        }
    }
}

/// The forward epilogue of the unfused algorithms: y += bias per channel, then ReLU in place.
func biasAndReLU(_ d: Device, _ g: WindowGeometry, bias: Tensor?, relu: Bool, y: Tensor) {
    if let bias { d.addBias(y.buffer, bias: bias.buffer, rows: g.outPixels, channels: g.outC) }
    if relu { d.relu(y.buffer, y.buffer, count: g.outCount) }
}

/// im2col + GEMM in tiles of output rows, through the Device primitives (im2col, gemm,
/// col2imAdd, addBias, relu): the generic path of every backend, for any geometry. The column
/// matrix of `tileRows` output pixels at a time lives in the workspace (a whole im2col of
/// block1_conv2 at batch 32 would be 3.7 GB). Backward-data multiplies dy by the kernel into
/// column tiles and scatters them back with col2imAdd.
package struct Im2colGemm<Context: ConvolutionContext>: ConvolutionAlgorithm {
    package init() {}

    /// Output rows per tile: at most the context's `im2colTileFloats` of columns (at least one row).
    func tileRows(_ c: Context) -> Int {
        let g = c.geometry
        return max(1, min(g.outPixels, c.im2colTileFloats / g.patchSize))
    }

    package func supports(_ pass: ConvPass, _ c: Context) -> Bool { true }

    package func name(_ pass: ConvPass, _ c: Context) -> String {
        pass == .backwardData ? "gemm-col2im(tile \(tileRows(c)) rows)" : "im2col-gemm(tile \(tileRows(c)) rows)"
    }

    /// One column tile, whatever the pass.
    package func workspace(_ pass: ConvPass, _ c: Context) -> Int { tileRows(c) * c.geometry.patchSize }

    private func tiles(_ c: Context, _ body: (_ row0: Int, _ rows: Int) -> Void) {
        let total = c.geometry.outPixels, step = tileRows(c)
        for row0 in stride(from: 0, to: total, by: step) { body(row0, min(step, total - row0)) }
    }

    package func forward(_ c: Context, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device, g = c.geometry
        let col = try c.workspace(workspace(.forward, c))
        tiles(c) { row0, rows in
            d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
            d.gemm(transA: false, transB: false, m: rows, n: g.outC, k: g.patchSize, alpha: 1,
                   a: col, aOffset: 0, lda: g.patchSize, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: y.buffer, cOffset: row0 * g.outC, ldc: g.outC)
        }
        biasAndReLU(d, g, bias: bias, relu: relu, y: y)
    }

    package func backwardData(_ c: Context, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device, g = c.geometry
        let dcol = try c.workspace(workspace(.backwardData, c))
        d.fill(dx.buffer, value: 0, offset: 0, count: g.inCount)
        tiles(c) { row0, rows in
            d.gemm(transA: false, transB: true, m: rows, n: g.patchSize, k: g.outC, alpha: 1,
                   a: dy.buffer, aOffset: row0 * g.outC, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
                   beta: 0, c: dcol, cOffset: 0, ldc: g.patchSize)
            d.col2imAdd(dcol, g, row0: row0, rows: rows, dx: dx.buffer)
        }
    }

    package func backwardFilter(_ c: Context, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let d = c.device, g = c.geometry
        let col = try c.workspace(workspace(.backwardFilter, c))
        tiles(c) { row0, rows in
            d.im2col(x.buffer, g, row0: row0, rows: rows, col: col)
            d.gemm(transA: true, transB: false, m: g.patchSize, n: g.outC, k: rows, alpha: 1,
                   a: col, aOffset: 0, lda: g.patchSize, b: dy.buffer, bOffset: row0 * g.outC, ldb: g.outC,
                   beta: row0 == 0 ? 0 : 1, c: dw.buffer, cOffset: 0, ldc: g.outC)
        }
        biasGradient(d, g, dy: dy, db: db)
    }
}

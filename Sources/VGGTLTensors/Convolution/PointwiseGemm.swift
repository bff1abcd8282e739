/// A 1x1 stride-1 unpadded convolution is one GEMM per pass: the NHWC input is already the
/// (pixels x C) matrix. Written on the Device primitives, for every backend.
package struct PointwiseGemm<Context: ConvolutionContext>: ConvolutionAlgorithm {
    package init() {}

    static func applies(_ g: WindowGeometry) -> Bool {
        g.kH == 1 && g.kW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0
            && g.outH == g.inH && g.outW == g.inW
    }

    package func supports(_ pass: ConvPass, _ c: Context) -> Bool { Self.applies(c.geometry) }
    package func name(_ pass: ConvPass, _ c: Context) -> String { "gemm-1x1" }
    package func workspace(_ pass: ConvPass, _ c: Context) -> Int { 0 }

    package func forward(_ c: Context, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device, g = c.geometry
        d.gemm(transA: false, transB: false, m: g.outPixels, n: g.outC, k: g.inC, alpha: 1,
               a: x.buffer, aOffset: 0, lda: g.inC, b: w.buffer, bOffset: 0, ldb: g.outC,
               beta: 0, c: y.buffer, cOffset: 0, ldc: g.outC)
        biasAndReLU(d, g, bias: bias, relu: relu, y: y)
    }

    package func backwardData(_ c: Context, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let g = c.geometry
        c.device.gemm(transA: false, transB: true, m: g.outPixels, n: g.inC, k: g.outC, alpha: 1,
                      a: dy.buffer, aOffset: 0, lda: g.outC, b: w.buffer, bOffset: 0, ldb: g.outC,
                      beta: 0, c: dx.buffer, cOffset: 0, ldc: g.inC)
    }

    package func backwardFilter(_ c: Context, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let d = c.device, g = c.geometry
        d.gemm(transA: true, transB: false, m: g.inC, n: g.outC, k: g.outPixels, alpha: 1,
               a: x.buffer, aOffset: 0, lda: g.inC, b: dy.buffer, bOffset: 0, ldb: g.outC,
               beta: 0, c: dw.buffer, cOffset: 0, ldc: g.outC)
        biasGradient(d, g, dy: dy, db: db)
    }
}

/// The forward epilogue of the unfused algorithms: y += bias per channel, then ReLU in place.
func biasAndReLU(_ d: Device, _ g: WindowGeometry, bias: Tensor?, relu: Bool, y: Tensor) {
    if let bias { d.addBias(y.buffer, bias: bias.buffer, rows: g.outPixels, channels: g.outC) }
    if relu { d.relu(y.buffer, y.buffer, count: g.outCount) }
}

/// db (overwritten) = the sum of dy over the output pixels, for algorithms whose kernel gradient
/// does not compute it alongside.
package func biasGradient(_ d: Device, _ g: WindowGeometry, dy: Tensor, db: Tensor?) {
    if let db { d.biasGradient(dy.buffer, rows: g.outPixels, channels: g.outC, db: db.buffer, accumulate: false) }
}

import VGGTLTensors

/// The patch gather fused into the GEMM tile loads (Kernels/conv/implicit_gemm.cl), bias and
/// ReLU in the epilogue, no im2col buffer. Backward-data runs it as the transposed convolution:
/// dy convolved with the kernel read flipped (and dy dilated by the stride).
struct ImplicitGemm: ConvolutionAlgorithm, TiledConvolution {
    let tile: ConvTile
    var kind: String { "implicit-gemm" }

    func supports(_ pass: ConvPass, _ c: OpenCLConvContext) -> Bool { pass != .backwardFilter }
    func name(_ pass: ConvPass, _ c: OpenCLConvContext) -> String { "implicit-gemm(\(tile))" }
    func workspace(_ pass: ConvPass, _ c: OpenCLConvContext) -> Int { 0 }

    func forward(_ c: OpenCLConvContext, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device
        try run(c, .forward(c.geometry), x: d.mem(x.buffer), w: d.mem(w.buffer), bias: bias.map { d.mem($0.buffer) }, relu: relu,
                y: d.mem(y.buffer))
    }

    func backwardData(_ c: OpenCLConvContext, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device
        try run(c, .backwardData(c.geometry), x: d.mem(dy.buffer), w: d.mem(w.buffer), bias: nil, relu: false, y: d.mem(dx.buffer))
    }

    private func run(_ c: OpenCLConvContext, _ e: ConvKernelGeometry, x: CLBuffer, w: CLBuffer, bias: CLBuffer?, relu: Bool,
                     y: CLBuffer) throws {
        let t = tile
        let k = try c.kernels.kernel("conv_implicit_gemm", file: "conv/implicit_gemm.cl", defines: e.defines, tile: t)
        let rows = c.geometry.batch * e.oh * e.ow
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        c.device.enqueue(k, global: [(e.oc + t.tn - 1) / t.tn * tx, (rows + t.tm - 1) / t.tm * ty], local: [tx, ty],
                         [x, w, bias ?? y, y, c.geometry.batch, bias != nil, relu])
    }
}

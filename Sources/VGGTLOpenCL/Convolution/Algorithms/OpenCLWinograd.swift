import VGGTLTensors

/// Winograd F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Kernels/conv/winograd.cl), in chunks
/// of tiles that fit the workspace: input transform, (m+2)^2 batched GEMMs with `tile`, output
/// transform with bias and ReLU. Backward-data is the same on the transposed convolution; the
/// kernel gradient transforms x and dy and sums V^T dM over the tiles, split across work-groups.
struct OpenCLWinograd: ConvolutionAlgorithm, TiledConvolution {
    /// Output tile size: 2 or 4.
    let m: Int
    let tile: ConvTile
    var kind: String { Winograd.name(m) }

    private static let file = "conv/winograd.cl"

    func supports(_ pass: ConvPass, _ c: OpenCLConvContext) -> Bool { c.kernelGeometry(pass).winogradApplies }

    func name(_ pass: ConvPass, _ c: OpenCLConvContext) -> String {
        if pass == .backwardFilter { return "\(Winograd.name(m))(\(tile), \(filterSplits(c).splits) splits)" }
        return "\(Winograd.name(m))(\(tile))"
    }

    /// A chunk's transformed tiles (input and products, or x and dy), and the transformed
    /// kernel (U, or the kernel gradient's partial sums per split).
    func workspace(_ pass: ConvPass, _ c: OpenCLConvContext) -> Int {
        let e = c.kernelGeometry(pass), xi = (m + 2) * (m + 2)
        let chunk = self.chunk(c, e)
        if pass == .backwardFilter {
            return xi * chunk * (e.ic + e.oc) + filterSplits(c).splits * xi * e.ic * e.oc
        }
        return xi * chunk * (e.ic + e.oc) + xi * e.ic * e.oc
    }

    /// Output tiles of `e`, over the batch.
    private func tiles(_ c: OpenCLConvContext, _ e: ConvKernelGeometry) -> Int {
        c.geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
    }

    /// Tiles per chunk: the transformed input and products of a chunk fit the workspace.
    func chunk(_ c: OpenCLConvContext, _ e: ConvKernelGeometry) -> Int { Self.chunk(m: m, c, e) }

    static func chunk(m: Int, _ c: OpenCLConvContext, _ e: ConvKernelGeometry) -> Int {
        let tiles = c.geometry.batch * ((e.oh + m - 1) / m) * ((e.ow + m - 1) / m)
        return max(1, min(tiles, c.kernels.workspaceFloats / ((m + 2) * (m + 2) * max(e.ic, e.oc))))
    }

    /// Splits of the kernel gradient's tile reduction (per chunk of tiles): about
    /// `workGroupsPerUnit` work-groups per compute unit over the (m+2)^2 GEMMs, at least four
    /// reduction steps per split, partial sums within the workspace.
    func filterSplits(_ c: OpenCLConvContext) -> (splits: Int, perChunk: Int) {
        let e = ConvKernelGeometry.forward(c.geometry), xi = (m + 2) * (m + 2), t = tile
        let chunk = self.chunk(c, e)
        let groups = xi * ((e.ic + t.tm - 1) / t.tm) * ((e.oc + t.tn - 1) / t.tn)
        let target = c.device.info.computeUnits * c.options.workGroupsPerUnit
        var s = max(1, (target + groups - 1) / groups)
        s = min(s, max(1, chunk / (t.tk * 4)), max(1, c.kernels.workspaceFloats / (xi * e.ic * e.oc)))
        var per = (chunk + s - 1) / s
        per = (per + t.tk - 1) / t.tk * t.tk
        return ((chunk + per - 1) / per, per)
    }

    /// The -D constants of Kernels/conv/winograd.cl for `e` (without the tile shape).
    private func defines(_ c: OpenCLConvContext, _ e: ConvKernelGeometry) throws -> [(String, Int)] {
        guard e.winogradApplies else {
            let g = c.geometry
            throw VGGTLError.invalidArgument("Winograd F(\(m)x\(m),3x3) needs a 3x3 stride-1 convolution, not \(g.kH)x\(g.kW) stride \(g.strideH)")
        }
        return [("WINO_M", m), ("IH", e.ih), ("IW", e.iw), ("IC", e.ic), ("OH", e.oh), ("OW", e.ow), ("OC", e.oc),
                ("PH", e.ph), ("PW", e.pw), ("FLIP", e.flip ? 1 : 0)]
    }

    func forward(_ c: OpenCLConvContext, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device
        try run(c, .forward, x: d.mem(x.buffer), w: w, bias: bias.map { d.mem($0.buffer) }, relu: relu, y: d.mem(y.buffer),
                kernelIsConstant: kernelIsConstant)
    }

    func backwardData(_ c: OpenCLConvContext, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device
        try run(c, .backwardData, x: d.mem(dy.buffer), w: w, bias: nil, relu: false, y: d.mem(dx.buffer),
                kernelIsConstant: kernelIsConstant)
    }

    private func run(_ c: OpenCLConvContext, _ pass: ConvPass, x: CLBuffer, w: Tensor, bias: CLBuffer?, relu: Bool, y: CLBuffer,
                     kernelIsConstant: Bool) throws {
        let d = c.device, t = tile, e = c.kernelGeometry(pass)
        let defines = try self.defines(c, e)
        let gemm = try c.kernels.kernel("winograd_batched_gemm", file: Self.file, defines: defines, tile: t)
        let all = defines + t.defines
        let kernelTransform = try c.kernels.kernel("winograd_kernel_transform", file: Self.file, defines: all)
        let inputTransform = try c.kernels.kernel("winograd_input_transform", file: Self.file, defines: all)
        let outputTransform = try c.kernels.kernel("winograd_output_transform", file: Self.file, defines: all)
        let xi = (m + 2) * (m + 2)

        // U = G g G^T per channel pair: kept across calls while the caller says w is unchanged.
        let u = try c.transformedKernel(pass, by: self, of: w, constant: kernelIsConstant, floats: xi * e.ic * e.oc,
                                        fill: { d.launch(kernelTransform, e.ic * e.oc, d.mem(w.buffer), $0) })

        let tiles = self.tiles(c, e), chunk = self.chunk(c, e)
        let v = try c.kernels.workspace(.a, floats: xi * chunk * e.ic)
        let p = try c.kernels.workspace(.b, floats: xi * chunk * e.oc)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        for t0 in stride(from: 0, to: tiles, by: chunk) {
            let n = min(chunk, tiles - t0)
            d.launch(inputTransform, n * e.ic, x, v, t0, n)
            d.enqueue(gemm, global: [(e.oc + t.tn - 1) / t.tn * tx, (n + t.tm - 1) / t.tm * ty, xi], local: [tx, ty, 1], [v, u, p, n])
            d.launch(outputTransform, n * e.oc, p, bias ?? p, y, t0, n, bias != nil, relu)
        }
    }

    /// dw by Winograd: per chunk of tiles, V = B^T d B of x and dM = A dY A^T of dy, then
    /// dU += V^T dM per (m+2)^2 point (split over tiles); finally dw = G^T dU G. db alongside.
    func backwardFilter(_ c: OpenCLConvContext, x xt: Tensor, dy dyt: Tensor, dw dwt: Tensor, db: Tensor?) throws {
        let d = c.device, t = tile, e = ConvKernelGeometry.forward(c.geometry)
        let (x, dy, dw) = (d.mem(xt.buffer), d.mem(dyt.buffer), d.mem(dwt.buffer))
        let defines = try self.defines(c, e)
        guard t.fitsColumnStaging else {
            throw VGGTLError.invalidArgument("tile \(t) cannot stage the Winograd kernel gradient's GEMMs (work items must cover its rows)")
        }
        let gemm = try c.kernels.kernel("winograd_filter_gemm", file: Self.file, defines: defines, tile: t)
        let all = defines + t.defines
        let inputTransform = try c.kernels.kernel("winograd_input_transform", file: Self.file, defines: all)
        let gradTransform = try c.kernels.kernel("winograd_grad_output_transform", file: Self.file, defines: all)
        let finish = try c.kernels.kernel("winograd_filter_finish", file: Self.file, defines: all)
        let xi = (m + 2) * (m + 2)
        let tiles = self.tiles(c, e), chunk = self.chunk(c, e)
        let split = filterSplits(c)
        let v = try c.kernels.workspace(.a, floats: xi * chunk * e.ic)
        let dm = try c.kernels.workspace(.b, floats: xi * chunk * e.oc)
        let partial = try c.kernels.workspace(.kernel, floats: split.splits * xi * e.ic * e.oc)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        for (i, t0) in stride(from: 0, to: tiles, by: chunk).enumerated() {
            let n = min(chunk, tiles - t0)
            // The last chunk may be shorter: the same splits, fewer tiles each.
            let per = ((n + split.splits - 1) / split.splits + t.tk - 1) / t.tk * t.tk
            d.launch(inputTransform, n * e.ic, x, v, t0, n)
            d.launch(gradTransform, n * e.oc, dy, dm, t0, n)
            d.enqueue(gemm, global: [(e.oc + t.tn - 1) / t.tn * tx, (e.ic + t.tm - 1) / t.tm * ty, xi * split.splits],
                      local: [tx, ty, 1], [v, dm, partial, n, split.splits, per, i > 0])
        }
        d.launch(finish, e.ic * e.oc, partial, split.splits, dw)
        biasGradient(d, c.geometry, dy: dyt, db: db)
    }
}

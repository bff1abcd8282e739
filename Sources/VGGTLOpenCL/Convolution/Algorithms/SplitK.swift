import VGGTLTensors

/// The kernel gradient as a GEMM over chunks of the N*OH*OW output pixels, one chunk per
/// work-group layer (Kernels/conv/split_k.cl), partial sums reduced on the device; the bias
/// gradient alongside.
struct SplitK: ConvolutionAlgorithm, TiledConvolution {
    let tile: ConvTile
    /// nil: chosen from the geometry and the device's compute units (`plan`).
    var splits: Int? = nil
    var kind: String { "split-k" }

    func supports(_ pass: ConvPass, _ c: OpenCLConvContext) -> Bool { pass == .backwardFilter }
    func name(_ pass: ConvPass, _ c: OpenCLConvContext) -> String { "split-k(\(tile), \(plan(c).splits) splits)" }

    /// The partial sums of dw and db, when there is more than one split.
    func workspace(_ pass: ConvPass, _ c: OpenCLConvContext) -> Int {
        let g = c.geometry, s = plan(c).splits
        return s > 1 ? s * (g.patchSize * g.outC + g.outC) : 0
    }

    /// Splits of the N*OH*OW reduction: about `workGroupsPerUnit` work-groups per compute unit,
    /// at least four reduction steps per split, partial sums within the workspace.
    func plan(_ c: OpenCLConvContext) -> (splits: Int, chunk: Int) {
        let g = c.geometry, t = tile
        let p = g.outPixels
        let tiles = ((g.patchSize + t.tm - 1) / t.tm) * ((g.outC + t.tn - 1) / t.tn)
        var s: Int
        if let splits {
            s = max(1, min(splits, p))
        } else {
            let target = c.device.info.computeUnits * c.options.workGroupsPerUnit
            s = max(1, (target + tiles - 1) / tiles)
            s = min(s, max(1, p / (t.tk * 4)))
        }
        s = min(s, max(1, c.kernels.workspaceFloats / (g.patchSize * g.outC)))
        var chunk = (p + s - 1) / s
        chunk = (chunk + t.tk - 1) / t.tk * t.tk
        s = (p + chunk - 1) / chunk
        return (s, chunk)
    }

    func backwardFilter(_ c: OpenCLConvContext, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let d = c.device, g = c.geometry, e = ConvKernelGeometry.forward(g), t = tile
        let (x, dy, dw, db) = (d.mem(x.buffer), d.mem(dy.buffer), d.mem(dw.buffer), db.map { d.mem($0.buffer) })
        let k = try c.kernels.kernel("conv_filter_split_k", file: "conv/split_k.cl", defines: e.defines, tile: t)
        let plan = self.plan(c)
        let q = g.patchSize, count = q * g.outC
        let out = plan.splits == 1 ? dw : try c.kernels.workspace(.a, floats: plan.splits * count)
        let dbOut = plan.splits == 1 ? (db ?? dw) : try c.kernels.workspace(.bias, floats: plan.splits * g.outC)
        let tx = t.tn / t.wn, ty = t.tm / t.wm
        d.enqueue(k, global: [(g.outC + t.tn - 1) / t.tn * tx, (q + t.tm - 1) / t.tm * ty, plan.splits], local: [tx, ty, 1],
                  [x, dy, out, dbOut, g.batch, plan.chunk, db != nil])
        guard plan.splits > 1 else { return }
        let reduce = try c.kernels.kernel("split_k_reduce", file: "conv/split_k.cl", defines: e.defines + t.defines)
        Self.reduce(d, reduce, out, splits: plan.splits, count: count, into: dw)
        if let db { Self.reduce(d, reduce, dbOut, splits: plan.splits, count: g.outC, into: db) }
    }

    /// Sums `splits` partial results of `count` floats: work-groups of cols x lanes items, the
    /// lanes (a power of two, each adding at least four splits) along the splits.
    private static func reduce(_ d: OpenCLDevice, _ kernel: CLKernel, _ partial: CLBuffer, splits: Int, count: Int, into out: CLBuffer) {
        let local = kernel.localSize
        let lanes = powerOfTwo(atMost: max(1, min(local, splits / 4)))
        let cols = local / lanes
        d.enqueue(kernel, global: [(count + cols - 1) / cols * local], local: [local], [partial, splits, count, lanes, out])
    }
}

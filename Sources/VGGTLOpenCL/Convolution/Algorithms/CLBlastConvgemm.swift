import COpenCL
import CCLBlast
import VGGTLTensors

/// CLBlast's own implicit-im2col convolution (`CLBlastSconvgemm`, CLBlast 1.5), forward only,
/// between copies to and from its NCHW/OIHW layouts (Kernels/conv/layout.cl); the OIHW copy of
/// a frozen layer's kernel is kept. CLBlast pads both sides of an axis alike and has no backward
/// routines for it.
struct CLBlastConvgemm: ConvolutionAlgorithm {
    /// Whether CLBlast's convgemm computes this geometry: its padding is the same on both sides.
    static func applies(_ g: WindowGeometry) -> Bool {
        g.outH == (g.inH + 2 * g.padTop - g.kH) / g.strideH + 1 && g.outW == (g.inW + 2 * g.padLeft - g.kW) / g.strideW + 1
            && g.inH + 2 * g.padTop >= g.kH && g.inW + 2 * g.padLeft >= g.kW
    }

    /// Forward passes it computes, except 1x1 ones (already one GEMM without the copies).
    func supports(_ pass: ConvPass, _ c: OpenCLConvContext) -> Bool {
        pass == .forward && Self.applies(c.geometry) && !c.isPointwise
    }

    func name(_ pass: ConvPass, _ c: OpenCLConvContext) -> String { "clblast-convgemm(NCHW copies)" }

    /// The NCHW copies of x and y and the OIHW copy of the kernel.
    func workspace(_ pass: ConvPass, _ c: OpenCLConvContext) -> Int {
        let g = c.geometry
        return g.inCount + g.outCount + g.patchSize * g.outC
    }

    func forward(_ c: OpenCLConvContext, x xt: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y yt: Tensor, kernelIsConstant: Bool) throws {
        let d = c.device, g = c.geometry
        guard Self.applies(g) else {
            throw VGGTLError.invalidArgument("CLBlast's convgemm needs the same padding on both sides, not \(g.padTop),\(g.padLeft) with output \(g.outH)x\(g.outW)")
        }
        let (x, y, bias) = (d.mem(xt.buffer), d.mem(yt.buffer), bias.map { d.mem($0.buffer) })
        let defines = [("IH", g.inH), ("IW", g.inW), ("IC", g.inC), ("KH", g.kH), ("KW", g.kW), ("OH", g.outH), ("OW", g.outW), ("OC", g.outC)]
        let file = "conv/layout.cl"
        let toNCHW = try c.kernels.kernel("nhwc_to_nchw", file: file, defines: defines)
        let toOIHW = try c.kernels.kernel("hwio_to_oihw", file: file, defines: defines)
        let toNHWC = try c.kernels.kernel("nchw_to_nhwc", file: file, defines: defines)
        let wt = try c.transformedKernel(.forward, by: self, of: w, constant: kernelIsConstant, floats: g.patchSize * g.outC,
                                         fill: { d.launch(toOIHW, g.patchSize * g.outC, d.mem(w.buffer), $0) })
        let xn = try c.kernels.workspace(.a, floats: g.inCount), yn = try c.kernels.workspace(.b, floats: g.outCount)
        d.launch(toNCHW, g.inCount, x, xn, g.batch)
        try d.clblastConvgemm(g, image: xn, kernel: wt, result: yn)
        d.launch(toNHWC, g.outCount, yn, bias ?? yn, y, g.batch, bias != nil, relu)
    }
}

extension OpenCLDevice {
    /// CLBlast's batched convolution as GEMM: `image` NCHW, `kernel` OIHW, `result` NCHW,
    /// padding the same on both sides of each axis (the caller checks).
    fileprivate func clblastConvgemm(_ g: WindowGeometry, image: CLBuffer, kernel: CLBuffer, result: CLBuffer) throws {
        let call = "CLBlastSconvgemm(\(g.batch)x\(g.inC)x\(g.inH)x\(g.inW), \(g.kH)x\(g.kW) -> \(g.outC))"
        let code = onQueue(call) { queue in
            let status = CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, g.inC, g.inH, g.inW, g.kH, g.kW,
                                          g.padTop, g.padLeft, g.strideH, g.strideW, 1, 1, g.outC, g.batch,
                                          image.mem, 0, kernel.mem, 0, result.mem, 0, queue, nil)
            return status == CLBlastSuccess ? CL_SUCCESS : status.rawValue
        }
        if code <= -1000 {
            throw VGGTLError.library(name: "CLBlast", reason: "\(call) on \(name) returned status \(code)")
        }
    }
}

import COpenCL
import CCLBlast

extension OpenCLDevice {
    /// CLBlast's batched convolution as GEMM (`CLBlastSconvgemm`, CLBlast 1.5): `image` is
    /// NCHW, `kernel` OIHW, `result` NCHW, padding the same on both sides of each axis (the
    /// caller checks). Forward only: CLBlast has no backward routines for it.
    func clblastConvgemm(_ g: WindowGeometry, image: CLBuffer, kernel: CLBuffer, result: CLBuffer) throws {
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

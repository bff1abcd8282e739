import VGGTLTensors

/// What an OpenCL convolution algorithm runs with: the plan's geometry, the device, its
/// convolution kernels (builder, workspace slots, options, tiles) and the plan's kept kernels.
struct OpenCLConvContext: ConvolutionContext {
    let geometry: WindowGeometry
    let device: OpenCLDevice
    let kernels: OpenCLConvolutionKernels
    let kept: KeptKernels

    /// Slot a of the convolution workspace: the device's own, which the generic path uses.
    func workspace(_ floats: Int) throws -> DeviceBuffer { try kernels.workspace(.a, floats: floats) }
    var im2colTileFloats: Int { device.options.im2colTileFloats }
    var options: OpenCLConvolutionOptions { kernels.options }

    /// The convolution a pass's kernels compute: the layer's, or for backward-data its transpose.
    func kernelGeometry(_ pass: ConvPass) -> ConvKernelGeometry {
        pass == .backwardData ? .backwardData(geometry) : .forward(geometry)
    }

    /// The path every geometry can take: one GEMM for 1x1, else im2col + GEMM.
    var generic: OpenCLConvAlgorithm {
        isPointwise ? PointwiseGemm<OpenCLConvContext>() : Im2colGemm<OpenCLConvContext>()
    }

    /// The transformed kernel of `w` that `owner` computes for `pass` (`fill` writes it): kept
    /// while the caller says the kernel is constant (and it is the same tensor at the same
    /// version), computed into the kernel workspace slot otherwise.
    func transformedKernel(_ pass: ConvPass, by owner: AnyHashable, of w: Tensor, constant: Bool, floats: Int,
                           fill: (CLBuffer) throws -> Void) throws -> CLBuffer {
        if let b = try kept.transform(pass, by: owner, of: w, constant: constant, floats: floats, on: device,
                                      fill: { try fill(device.mem($0)) }) {
            return device.mem(b)
        }
        let b = try kernels.workspace(.kernel, floats: floats)
        try fill(b)
        return b
    }
}

/// An OpenCL algorithm built around one GEMM tile shape (the tile table's, Tuning/).
protocol TiledConvolution {
    var tile: ConvTile { get }
    /// The name without the tile: "implicit-gemm", "winograd-F(4x4,3x3)".
    var kind: String { get }
}

/// The shape arithmetic a specialised kernel is compiled for: the convolution itself, or, for
/// backward-data, the transposed convolution dx = conv(dilate(dy, stride), flip(w)).
struct ConvKernelGeometry: Equatable {
    var ih: Int, iw: Int, ic: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int
    var oh: Int, ow: Int, oc: Int, dh: Int, dw: Int, flip: Bool

    static func forward(_ g: WindowGeometry) -> ConvKernelGeometry {
        ConvKernelGeometry(ih: g.inH, iw: g.inW, ic: g.inC, kh: g.kH, kw: g.kW, sh: g.strideH, sw: g.strideW,
                           ph: g.padTop, pw: g.padLeft, oh: g.outH, ow: g.outW, oc: g.outC, dh: 1, dw: 1, flip: false)
    }

    /// dx[i] = sum_kh dy[(i + padTop - kh) / s] w[kh] (where divisible): with kh' = KH-1-kh the
    /// tap offset is i - (KH-1-padTop) + kh', a stride-1 convolution over dy dilated by s.
    static func backwardData(_ g: WindowGeometry) -> ConvKernelGeometry {
        ConvKernelGeometry(ih: g.outH, iw: g.outW, ic: g.outC, kh: g.kH, kw: g.kW, sh: 1, sw: 1,
                           ph: g.kH - 1 - g.padTop, pw: g.kW - 1 - g.padLeft, oh: g.inH, ow: g.inW, oc: g.inC,
                           dh: g.strideH, dw: g.strideW, flip: true)
    }

    var defines: [(String, Int)] {
        [("IH", ih), ("IW", iw), ("IC", ic), ("KH", kh), ("KW", kw), ("SH", sh), ("SW", sw), ("PH", ph), ("PW", pw),
         ("OH", oh), ("OW", ow), ("OC", oc), ("DH", dh), ("DW", dw), ("FLIP", flip ? 1 : 0)]
    }

    var winogradApplies: Bool { kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 }
}

extension CPUDevice {
    public func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan { CPUConvolutionPlan(g, on: self) }
}

/// The CPU's convolution of one geometry. Each pass picks one of:
/// - `pointwise`: 1x1 stride 1, one OpenBLAS GEMM;
/// - `winograd`: F(2x2,3x3) / F(4x4,3x3) for 3x3 stride-1 'same' layers (Winograd.swift), the
///   transformed kernel kept across calls while the layer is frozen;
/// - `perThreadIm2col`: im2col tiles per thread with fused bias + ReLU (TiledIm2col.swift),
///   forward and backward-filter of every other geometry;
/// - `im2col`: the device-generic tiled im2col (Im2colConvolution.swift): backward-data of
///   those geometries, and every pass under `Options.convolution = .im2colWholeTile`.
final class CPUConvolutionPlan: ConvolutionPlan {
    enum Algorithm {
        case pointwise
        case winograd(Winograd.Variant)
        case perThreadIm2col
        case im2col(Im2colConvolution)
    }

    let geometry: WindowGeometry
    let device: CPUDevice
    let forwardChoice: Algorithm, backwardDataChoice: Algorithm, backwardFilterChoice: Algorithm
    /// Transformed kernels of a frozen layer (Winograd U, and its flipped twin for backward-data);
    /// both are freed by any call that says the kernel is not constant.
    private var forwardKernel = KeptKernel(), backwardDataKernel = KeptKernel()

    init(_ g: WindowGeometry, on device: CPUDevice) {
        geometry = g
        self.device = device
        forwardChoice = Self.forward(g, device.options)
        backwardDataChoice = Self.backwardData(g, device.options)
        backwardFilterChoice = Self.backwardFilter(g, device.options)
    }

    // MARK: - Choosing

    /// The Winograd variant the options pick for g, or nil where Winograd does not apply or
    /// im2col was asked for.
    static func winograd(_ g: WindowGeometry, _ o: CPUDevice.Options) -> Winograd.Variant? {
        guard Winograd.applies(g) else { return nil }
        switch o.convolution {
        case .im2col, .im2colWholeTile: return nil
        case .winograd2: return Winograd.f2
        case .winograd4: return Winograd.f4
        case .auto: return Winograd.variant(g)
        }
    }

    static func forward(_ g: WindowGeometry, _ o: CPUDevice.Options) -> Algorithm {
        if PointwiseConvolution.applies(g) { return .pointwise }
        if let v = winograd(g, o) { return .winograd(v) }
        if o.convolution == .im2colWholeTile { return .im2col(Im2colConvolution(g, tileFloats: o.im2colTileFloats)) }
        return .perThreadIm2col
    }

    static func backwardData(_ g: WindowGeometry, _ o: CPUDevice.Options) -> Algorithm {
        if PointwiseConvolution.applies(g) { return .pointwise }
        if let v = winograd(g, o) { return .winograd(v) }
        return .im2col(Im2colConvolution(g, tileFloats: o.im2colTileFloats))
    }

    static func backwardFilter(_ g: WindowGeometry, _ o: CPUDevice.Options) -> Algorithm { forward(g, o) }

    // MARK: - Names and workspace

    private func name(_ a: Algorithm, _ generic: (Im2colConvolution) -> String) -> String {
        switch a {
        case .pointwise: return PointwiseConvolution.name
        case .winograd(let v): return v.name
        case .perThreadIm2col: return TiledIm2col.name(geometry)
        case .im2col(let c): return generic(c)
        }
    }

    var forwardAlgorithm: String { name(forwardChoice, \.forwardName) }
    var backwardDataAlgorithm: String { name(backwardDataChoice, \.backwardDataName) }
    var backwardFilterAlgorithm: String { name(backwardFilterChoice, \.backwardFilterName) }

    var forwardWorkspace: Int {
        switch forwardChoice {
        case .pointwise: return 0
        case .winograd(let v): return Winograd.workspaceFloats(v, geometry, flip: false, keptKernel: false, device: device)
        case .perThreadIm2col: return TiledIm2col.forwardWorkspace(geometry, threads: device.threads)
        case .im2col(let c): return c.workspace
        }
    }

    var backwardDataWorkspace: Int {
        switch backwardDataChoice {
        case .pointwise, .perThreadIm2col: return 0
        case .winograd(let v): return Winograd.workspaceFloats(v, geometry, flip: true, keptKernel: false, device: device)
        case .im2col(let c): return c.workspace
        }
    }

    var backwardFilterWorkspace: Int {
        switch backwardFilterChoice {
        case .pointwise: return 0
        case .winograd(let v): return Winograd.filterWorkspaceFloats(v, geometry, device: device)
        case .perThreadIm2col: return TiledIm2col.backwardFilterWorkspace(geometry, threads: device.threads)
        case .im2col(let c): return c.workspace
        }
    }

    /// Floats of transformed kernels kept now (tests, reports).
    var keptKernelFloats: Int { forwardKernel.floats + backwardDataKernel.floats }

    func releaseKeptKernels() {
        forwardKernel.release()
        backwardDataKernel.release()
    }

    // MARK: - Passes

    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let g = geometry
        try g.checkForward(on: device, x: x, w: w, bias: bias, y: y)
        if !kernelIsConstant { releaseKeptKernels() }
        switch forwardChoice {
        case .pointwise:
            PointwiseConvolution.forward(device, g, x: x, w: w, bias: bias, relu: relu, y: y)
        case .winograd(let v):
            try Winograd.run(v, device: device, x: x.buffer, w: w, bias: bias?.buffer, relu: relu, y: y.buffer, g,
                             flip: false, kept: &forwardKernel, constant: kernelIsConstant)
        case .perThreadIm2col:
            try TiledIm2col.forward(device: device, x: x.buffer, w: w.buffer, bias: bias?.buffer, relu: relu, y: y.buffer, g)
        case .im2col(let c):
            c.forward(device, x: x, w: w, bias: bias, relu: relu, y: y, col: try device.workspace.get(c.workspace, on: device))
        }
    }

    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let g = geometry
        try g.checkBackwardData(on: device, dy: dy, w: w, dx: dx)
        if !kernelIsConstant { releaseKeptKernels() }
        switch backwardDataChoice {
        case .pointwise:
            PointwiseConvolution.backwardData(device, g, dy: dy, w: w, dx: dx)
        case .winograd(let v):
            try Winograd.run(v, device: device, x: dy.buffer, w: w, bias: nil, relu: false, y: dx.buffer, g,
                             flip: true, kept: &backwardDataKernel, constant: kernelIsConstant)
        case .perThreadIm2col:
            preconditionFailure("backward-data has no per-thread im2col algorithm")
        case .im2col(let c):
            c.backwardData(device, dy: dy, w: w, dx: dx, dcol: try device.workspace.get(c.workspace, on: device))
        }
    }

    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let g = geometry
        try g.checkBackwardFilter(on: device, x: x, dy: dy, dw: dw, db: db)
        releaseKeptKernels()   // a kernel whose gradient is wanted is about to change
        switch backwardFilterChoice {
        case .pointwise:
            PointwiseConvolution.backwardFilter(device, g, x: x, dy: dy, dw: dw)
        case .winograd(let v):
            try Winograd.filterGradient(v, device: device, x: x.buffer, dy: dy.buffer, dw: dw.buffer, g)
        case .perThreadIm2col:
            try TiledIm2col.backwardFilter(device: device, x: x.buffer, dy: dy.buffer, dw: dw.buffer, g)
        case .im2col(let c):
            c.backwardFilter(device, x: x, dy: dy, dw: dw, col: try device.workspace.get(c.workspace, on: device))
        }
        if let db { device.biasGradient(dy.buffer, rows: g.outPixels, channels: g.outC, db: db.buffer, accumulate: false) }
    }
}

extension OpenCLDevice {
    /// Tuning knobs of one OpenCL device, fixed when it opens.
    public struct Options: Sendable, Equatable {
        /// The largest im2col tile (floats) of the tiled im2col path.
        public var im2colTileFloats: Int

        public init(im2colTileFloats: Int = 16 << 20) {
            self.im2colTileFloats = im2colTileFloats
        }
    }

    public func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan { OpenCLConvolutionPlan(g, on: self) }
}

/// OpenCL's convolution of one geometry. Today every pass is one GEMM for 1x1 layers and tiled
/// im2col + CLBlast GEMM (col2im for backward-data) otherwise, through the device primitives.
/// Each pass has its own choice function: a new algorithm is a case of `Algorithm`, a line in
/// the choice, and its name, workspace and call below.
final class OpenCLConvolutionPlan: ConvolutionPlan {
    enum Algorithm {
        case pointwise
        case im2col(Im2colConvolution)
    }

    let geometry: WindowGeometry
    let device: OpenCLDevice
    let forwardChoice: Algorithm, backwardDataChoice: Algorithm, backwardFilterChoice: Algorithm

    init(_ g: WindowGeometry, on device: OpenCLDevice) {
        geometry = g
        self.device = device
        forwardChoice = Self.forward(g, device)
        backwardDataChoice = Self.backwardData(g, device)
        backwardFilterChoice = Self.backwardFilter(g, device)
    }

    // MARK: - Choosing

    private static func generic(_ g: WindowGeometry, _ d: OpenCLDevice) -> Algorithm {
        PointwiseConvolution.applies(g) ? .pointwise : .im2col(Im2colConvolution(g, tileFloats: d.options.im2colTileFloats))
    }

    static func forward(_ g: WindowGeometry, _ d: OpenCLDevice) -> Algorithm { generic(g, d) }
    static func backwardData(_ g: WindowGeometry, _ d: OpenCLDevice) -> Algorithm { generic(g, d) }
    static func backwardFilter(_ g: WindowGeometry, _ d: OpenCLDevice) -> Algorithm { generic(g, d) }

    // MARK: - Names and workspace

    private static func name(_ a: Algorithm, _ generic: (Im2colConvolution) -> String) -> String {
        switch a {
        case .pointwise: return PointwiseConvolution.name
        case .im2col(let c): return generic(c)
        }
    }

    private static func workspace(_ a: Algorithm) -> Int {
        switch a {
        case .pointwise: return 0
        case .im2col(let c): return c.workspace
        }
    }

    var forwardAlgorithm: String { Self.name(forwardChoice, \.forwardName) }
    var backwardDataAlgorithm: String { Self.name(backwardDataChoice, \.backwardDataName) }
    var backwardFilterAlgorithm: String { Self.name(backwardFilterChoice, \.backwardFilterName) }
    var forwardWorkspace: Int { Self.workspace(forwardChoice) }
    var backwardDataWorkspace: Int { Self.workspace(backwardDataChoice) }
    var backwardFilterWorkspace: Int { Self.workspace(backwardFilterChoice) }

    // MARK: - Passes

    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        let g = geometry
        try g.checkForward(on: device, x: x, w: w, bias: bias, y: y)
        switch forwardChoice {
        case .pointwise:
            PointwiseConvolution.forward(device, g, x: x, w: w, bias: bias, relu: relu, y: y)
        case .im2col(let c):
            c.forward(device, x: x, w: w, bias: bias, relu: relu, y: y, col: try device.workspace.get(c.workspace, on: device))
        }
    }

    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        let g = geometry
        try g.checkBackwardData(on: device, dy: dy, w: w, dx: dx)
        switch backwardDataChoice {
        case .pointwise:
            PointwiseConvolution.backwardData(device, g, dy: dy, w: w, dx: dx)
        case .im2col(let c):
            c.backwardData(device, dy: dy, w: w, dx: dx, dcol: try device.workspace.get(c.workspace, on: device))
        }
    }

    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        let g = geometry
        try g.checkBackwardFilter(on: device, x: x, dy: dy, dw: dw, db: db)
        switch backwardFilterChoice {
        case .pointwise:
            PointwiseConvolution.backwardFilter(device, g, x: x, dy: dy, dw: dw)
        case .im2col(let c):
            c.backwardFilter(device, x: x, dy: dy, dw: dw, col: try device.workspace.get(c.workspace, on: device))
        }
        if let db { device.biasGradient(dy.buffer, rows: g.outPixels, channels: g.outC, db: db.buffer, accumulate: false) }
    }
}

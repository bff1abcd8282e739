import VGGTLTensors

extension CPUDevice {
    public func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan { CPUConvolutionPlan(g, on: self) }
}

/// What a CPU convolution algorithm runs with: the geometry, the device (threads, OpenBLAS,
/// options) and the plan's kept kernels.
struct CPUConvContext: ConvolutionContext {
    let geometry: WindowGeometry
    let device: CPUDevice
    let kept: KeptKernels

    func workspace(_ floats: Int) throws -> DeviceBuffer { try device.workspace.get(floats, on: device) }
    var im2colTileFloats: Int { device.options.im2colTileFloats }
}

/// The CPU's convolution of one geometry. Each pass runs the first algorithm of the device's
/// list (`algorithms`) that supports it:
/// - `PointwiseGemm`: 1x1 stride 1, one OpenBLAS GEMM;
/// - `CPUWinograd`: F(2x2,3x3) / F(4x4,3x3) for 3x3 stride-1 'same' layers, the transformed
///   kernel kept across calls while the layer is frozen;
/// - `TiledIm2col`: im2col tiles per thread with fused bias + ReLU, forward and backward-filter
///   of every other geometry;
/// - `Im2colGemm`: the device-generic tiled im2col: backward-data of those geometries, and every
///   pass under `Options.convolution = .im2colWholeTile`.
final class CPUConvolutionPlan: ConvolutionPlan {
    typealias Algorithm = any ConvolutionAlgorithm<CPUConvContext>

    let context: CPUConvContext
    let forwardChoice: Algorithm, backwardDataChoice: Algorithm, backwardFilterChoice: Algorithm
    var geometry: WindowGeometry { context.geometry }

    init(_ g: WindowGeometry, on device: CPUDevice) {
        let c = CPUConvContext(geometry: g, device: device, kept: KeptKernels())
        let list = Self.algorithms(g, device.options)
        func first(_ pass: ConvPass) -> Algorithm { list.first { $0.supports(pass, c) }! }
        context = c
        forwardChoice = first(.forward)
        backwardDataChoice = first(.backwardData)
        backwardFilterChoice = first(.backwardFilter)
    }

    // MARK: - Choosing

    /// The algorithms the options allow for g, most preferred first; the generic im2col path,
    /// last, takes every pass of every geometry.
    static func algorithms(_ g: WindowGeometry, _ o: CPUDevice.Options) -> [Algorithm] {
        var list: [Algorithm] = [PointwiseGemm<CPUConvContext>()]
        if let m = winograd(g, o) { list.append(CPUWinograd(m: m)) }
        if o.convolution != .im2colWholeTile { list.append(TiledIm2col()) }
        list.append(Im2colGemm<CPUConvContext>())
        return list
    }

    /// The Winograd output tile the options pick for g (2 or 4), or nil where Winograd does not
    /// apply or im2col was asked for.
    static func winograd(_ g: WindowGeometry, _ o: CPUDevice.Options) -> Int? {
        guard CPUWinograd.applies(g) else { return nil }
        switch o.convolution {
        case .im2col, .im2colWholeTile: return nil
        case .winograd2: return 2
        case .winograd4: return 4
        case .auto: return Winograd.fewestMultiplies(outH: g.outH, outW: g.outW)
        }
    }

    // MARK: - Names and workspace

    var forwardAlgorithm: String { forwardChoice.name(.forward, context) }
    var backwardDataAlgorithm: String { backwardDataChoice.name(.backwardData, context) }
    var backwardFilterAlgorithm: String { backwardFilterChoice.name(.backwardFilter, context) }
    var forwardWorkspace: Int { forwardChoice.workspace(.forward, context) }
    var backwardDataWorkspace: Int { backwardDataChoice.workspace(.backwardData, context) }
    var backwardFilterWorkspace: Int { backwardFilterChoice.workspace(.backwardFilter, context) }

    /// Floats of transformed kernels kept now (tests, reports).
    var keptKernelFloats: Int { context.kept.floats }

    func releaseKeptKernels() { context.kept.release() }

    // MARK: - Passes

    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try geometry.checkForward(on: context.device, x: x, w: w, bias: bias, y: y)
        if !kernelIsConstant { releaseKeptKernels() }
        try forwardChoice.forward(context, x: x, w: w, bias: bias, relu: relu, y: y, kernelIsConstant: kernelIsConstant)
    }

    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try geometry.checkBackwardData(on: context.device, dy: dy, w: w, dx: dx)
        if !kernelIsConstant { releaseKeptKernels() }
        try backwardDataChoice.backwardData(context, dy: dy, w: w, dx: dx, kernelIsConstant: kernelIsConstant)
    }

    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try geometry.checkBackwardFilter(on: context.device, x: x, dy: dy, dw: dw, db: db)
        releaseKeptKernels()   // a kernel whose gradient is wanted is about to change
        try backwardFilterChoice.backwardFilter(context, x: x, dy: dy, dw: dw, db: db)
    }
}

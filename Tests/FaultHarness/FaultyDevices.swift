import COpenCL
import VGGTL

/// A device that is lost after `calls` calls: the next one fails as a lost or reset OpenCL
/// device's calls do (CL_OUT_OF_RESOURCES), the work after it is skipped, reads give NaN, and
/// `checkHealthy` throws the failure, as OpenCLDevice does after a real one.
final class LostDevice: ForwardingDevice {
    private var callsLeft: Int
    private var failure: VGGTLError?

    init(_ base: Device, after calls: Int) {
        callsLeft = calls
        super.init(base)
    }

    override func perform(_ call: String, _ work: () throws -> Void) rethrows {
        guard failure == nil else { return }
        guard callsLeft > 0 else {
            failure = .deviceFailed(device: name, call: call, code: CL_OUT_OF_RESOURCES)
            return
        }
        callsLeft -= 1
        try work()
    }

    override func read(_ buffer: DeviceBuffer, offset: Int, into: UnsafeMutableBufferPointer<Float>) {
        super.read(buffer, offset: offset, into: into)
        // After a failure the values are meaningless: NaN, so nothing mistakes them for results.
        if failure != nil { into.initialize(repeating: .nan) }
    }

    override func checkHealthy() throws {
        if let failure { throw failure }
        try base.checkHealthy()
    }
}

/// A device whose bias gradients (of Dense, BatchNorm and convolution layers) are all `factor`
/// times what they should be.
final class BiasScalingDevice: ForwardingDevice {
    let factor: Float

    init(_ base: Device, factor: Float) {
        self.factor = factor
        super.init(base)
    }

    override func biasGradient(_ dy: DeviceBuffer, rows: Int, channels: Int, db: DeviceBuffer, accumulate: Bool) {
        super.biasGradient(dy, rows: rows, channels: channels, db: db, accumulate: accumulate)
        scale(db, db, count: channels, by: factor)
    }

    override func convolutionPlan(_ g: WindowGeometry) throws -> ConvolutionPlan {
        BiasScalingPlan(try super.convolutionPlan(g), device: self)
    }
}

/// A convolution plan whose bias gradient is scaled by its device's factor.
final class BiasScalingPlan: ConvolutionPlan {
    let inner: ConvolutionPlan
    let device: BiasScalingDevice

    init(_ inner: ConvolutionPlan, device: BiasScalingDevice) { self.inner = inner; self.device = device }

    var geometry: WindowGeometry { inner.geometry }
    var forwardAlgorithm: String { inner.forwardAlgorithm }
    var backwardDataAlgorithm: String { inner.backwardDataAlgorithm }
    var backwardFilterAlgorithm: String { inner.backwardFilterAlgorithm }
    var forwardWorkspace: Int { inner.forwardWorkspace }
    var backwardDataWorkspace: Int { inner.backwardDataWorkspace }
    var backwardFilterWorkspace: Int { inner.backwardFilterWorkspace }

    func forward(x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try inner.forward(x: x, w: w, bias: bias, relu: relu, y: y, kernelIsConstant: kernelIsConstant)
    }
    func backwardData(dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try inner.backwardData(dy: dy, w: w, dx: dx, kernelIsConstant: kernelIsConstant)
    }
    func backwardFilter(x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try inner.backwardFilter(x: x, dy: dy, dw: dw, db: db)
        if let db { device.scale(db.buffer, db.buffer, count: db.count, by: device.factor) }
    }
    func releaseKeptKernels() { inner.releaseKeptKernels() }
}

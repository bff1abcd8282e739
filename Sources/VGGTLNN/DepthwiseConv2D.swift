import VGGTLTensors

/// Keras' DepthwiseConv2D with depth_multiplier 1 (MobileNetV2, EfficientNet, ConvNeXt's 7x7):
/// each channel convolved with its own kH x kW filter. The kernel has Keras' shape
/// [kH, kW, C, 1] (its memory is the device's [kH, kW, C]); torch's [C, 1, kH, kW] converts with
/// `kerasKernel(fromTorch:)`. Padding 'same' (TensorFlow's: the extra row/column at the
/// bottom/right when the total is odd), 'valid' or explicit (torch's padding=). No fused
/// activation: the backbones put BatchNorm and the activation after it.
public final class DepthwiseConv2D: UnaryLayer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter?
    public let channels: Int, kernelSize: (Int, Int), strides: (Int, Int), padding: Padding
    private var x: Tensor?
    private var geometry: WindowGeometry?

    public init(_ name: String, channels: Int, kernelSize: (Int, Int) = (3, 3), strides: (Int, Int) = (1, 1),
                padding: Padding = .same, useBias: Bool = true, on device: Device, rng: inout SeededGenerator) throws {
        guard channels > 0 else { throw VGGTLError.invalidArgument("layer \(name): depthwise convolution needs at least one channel") }
        self.name = name; self.channels = channels; self.kernelSize = kernelSize; self.strides = strides; self.padding = padding
        let shape = [kernelSize.0, kernelSize.1, channels, 1]
        let area = kernelSize.0 * kernelSize.1
        // Keras' glorot_uniform on a [kH, kW, C, 1] kernel: fan_in kH*kW*C, fan_out kH*kW.
        kernel = Parameter(name: "\(name)/depthwise_kernel", value: try Tensor(
            glorotUniform(shape, fanIn: area * channels, fanOut: area, rng: &rng), shape: shape, on: device, what: "\(name)/depthwise_kernel"))
        bias = useBias ? Parameter(name: "\(name)/bias", value: try Tensor(zeros: [channels], on: device, what: "\(name)/bias")) : nil
    }

    public var parameters: [Parameter] { [kernel] + (bias.map { [$0] } ?? []) }

    func geometry(_ s: [Int]) throws -> WindowGeometry {
        try requireRank(s, 4, layer: name)
        guard s[3] == channels else { throw VGGTLError.shapeMismatch(what: "layer \(name) input channels", expected: [channels], got: [s[3]]) }
        return try windowGeometry(layer: name, input: s, kernel: kernelSize, stride: strides, padding: padding, outC: channels)
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { try geometry(input).outShape }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = kernel.trainable
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let g = try geometry(x.shape)
        guard x.device === kernel.value.device else {
            throw VGGTLError.invalidArgument("layer \(name): input is on \(x.device.name), the layer's weights on \(kernel.value.device.name)")
        }
        let y = try required(out)
        x.device.depthwiseConv(x.buffer, kernel.value.buffer, bias: bias?.value.buffer, y.buffer, g)
        self.x = x; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x, let g = geometry else { throw backwardBeforeForward() }
        let d = dy.device
        if kernel.trainable { d.depthwiseConvBackwardFilter(x.buffer, dy.buffer, try kernel.gradient().buffer, g) }
        if let bias, bias.trainable {
            d.biasGradient(dy.buffer, rows: g.outPixels, channels: channels, db: try bias.gradient().buffer, accumulate: false)
        }
        if let dx = t.inputs[0] { d.depthwiseConvBackwardData(dy.buffer, kernel.value.buffer, dx.buffer, g) }
    }

    /// Keras' [kH, kW, C, 1] kernel from torch's depthwise weight [C, 1, kH, kW] (groups = C).
    public static func kerasKernel(fromTorch w: [Float], channels: Int, kernelSize: (Int, Int)) -> [Float] {
        let (kh, kw) = kernelSize
        var out = [Float](repeating: 0, count: w.count)
        for c in 0..<channels { for i in 0..<kh { for j in 0..<kw { out[(i * kw + j) * channels + c] = w[(c * kh + i) * kw + j] } } }
        return out
    }
}

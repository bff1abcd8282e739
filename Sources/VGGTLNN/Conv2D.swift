import VGGTLTensors

/// Keras' Conv2D: NHWC input, HWIO kernel, optional bias and activation (ReLU fused into the
/// plan; relu6, sigmoid, swish, gelu applied after it, as EfficientNet's squeeze-and-excitation
/// convolutions have them). Padding 'same',
/// 'valid' or explicit per side (PyTorch's padding=, e.g. torchvision ResNet's 3x3 stride-2).
/// The device computes it: the layer keeps the device's plan for each input geometry it has
/// seen and calls only that.
public final class Conv2D: UnaryLayer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter?
    public let filters: Int, kernelSize: (Int, Int), strides: (Int, Int), padding: Padding
    public let activation: Activation
    private var x: Tensor?, y: Tensor?
    /// The pre-activation of a pointwise activation (not ReLU), which its backward reads.
    private var z: Tensor?
    private var geometry: WindowGeometry?
    /// The device's plan per input geometry (training and validation batches, a last partial
    /// batch); a few at most, since a frozen layer's plans keep transformed kernels.
    private var plans: [WindowGeometry: ConvolutionPlan] = [:]
    /// The plan that may keep a transformed kernel now (see `plan(for:)`).
    private weak var keeping: ConvolutionPlan?

    public init(_ name: String, inChannels: Int, filters: Int, kernelSize: (Int, Int) = (3, 3), strides: (Int, Int) = (1, 1),
                padding: Padding = .same, activation: Activation = .relu, useBias: Bool = true,
                on device: Device, rng: inout SeededGenerator) throws {
        self.name = name; self.filters = filters; self.kernelSize = kernelSize
        self.strides = strides; self.padding = padding; self.activation = activation
        let shape = [kernelSize.0, kernelSize.1, inChannels, filters]
        let area = kernelSize.0 * kernelSize.1
        kernel = Parameter(name: "\(name)/kernel", value: try Tensor(
            glorotUniform(shape, fanIn: area * inChannels, fanOut: area * filters, rng: &rng), shape: shape, on: device, what: "\(name)/kernel"))
        bias = useBias ? Parameter(name: "\(name)/bias", value: try Tensor(zeros: [filters], on: device, what: "\(name)/bias")) : nil
    }

    public var parameters: [Parameter] { [kernel] + (bias.map { [$0] } ?? []) }

    func geometry(_ s: [Int]) throws -> WindowGeometry {
        try requireRank(s, 4, layer: name)
        guard s[3] == kernel.value.shape[2] else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) input channels", expected: [kernel.value.shape[2]], got: [s[3]])
        }
        return try windowGeometry(layer: name, input: s, kernel: kernelSize, stride: strides, padding: padding, outC: filters)
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { try geometry(input).outShape }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .kernelLayer(kernel: kernel, activation: activation) }

    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool, context: StepContext) -> Int {
        activationScratch(activation, dy: dy, dyIsDead: dyIsDead)
    }

    /// The plan for `g` on the kernel's device. Only the plan in use may keep a frozen kernel's
    /// transform: switching geometry releases the previous plan's, so memory stays one transform.
    func plan(for g: WindowGeometry) throws -> ConvolutionPlan {
        let p: ConvolutionPlan
        if let known = plans[g] {
            p = known
        } else {
            if plans.count >= 8 { plans.values.forEach { $0.releaseKeptKernels() }; plans = [:] }
            p = try kernel.value.device.convolutionPlan(g)
            plans[g] = p
        }
        if keeping !== p { keeping?.releaseKeptKernels(); keeping = p }
        return p
    }

    /// The plan for the last forward's geometry (nil before the first forward).
    public var currentPlan: ConvolutionPlan? { geometry.flatMap { plans[$0] } }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let g = try geometry(x.shape)
        guard x.device === kernel.value.device else {
            throw VGGTLError.invalidArgument("layer \(name): input is on \(x.device.name), the layer's weights on \(kernel.value.device.name)")
        }
        let y = try required(out)
        let z = try preActivation(activation, output: y, &self.z, layer: name)
        try plan(for: g).forward(x: x, w: kernel.value, bias: bias?.value, relu: activation == .relu, y: z,
                                 kernelIsConstant: !kernel.trainable)
        applyActivation(activation, z, y)
        self.x = x; self.y = y; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x, let y, let g = geometry else { throw backwardBeforeForward() }
        let plan = try plan(for: g)
        let grad = activationGradient(activation, dy, output: y, preActivation: z, t)
        if kernel.trainable {
            try plan.backwardFilter(x: x, dy: grad, dw: kernel.gradient(), db: bias?.trainable == true ? bias!.gradient() : nil)
        }
        if let dx = t.inputs[0] { try plan.backwardData(dy: grad, w: kernel.value, dx: dx, kernelIsConstant: !kernel.trainable) }
    }
}

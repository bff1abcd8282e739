/// Keras' Conv2D: NHWC input, HWIO kernel, optional bias and fused ReLU. Padding 'same',
/// 'valid' or explicit per side (PyTorch's padding=, e.g. torchvision ResNet's 3x3 stride-2).
public final class Conv2D: UnaryLayer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter?
    public let filters: Int, kernelSize: (Int, Int), strides: (Int, Int), padding: Padding
    public let activation: Activation
    private var x: Tensor?, y: Tensor?
    private var geometry: WindowGeometry?

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

    public func memory(inputs: [[Int]], training: Bool) -> LayerMemory { .kernelLayer(kernel: kernel, activation: activation) }

    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool) -> Int {
        reluMaskScratch(activation, dy: dy, dyIsDead: dyIsDead)
    }

    public func forward(_ x: Tensor, into out: Tensor?, training: Bool) throws -> Tensor {
        let g = try geometry(x.shape)
        let y = try required(out)
        try Convolution.forward(x: x, w: kernel.value, bias: bias?.value, y: y, relu: activation == .relu, g)
        self.x = x; self.y = y; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets) throws {
        guard let x, let y, let g = geometry else { throw backwardBeforeForward() }
        let grad = activation == .relu ? reluMasked(dy, output: y, t) : dy
        if kernel.trainable {
            try Convolution.backwardFilter(x: x, dy: grad, dw: kernel.gradient(), db: bias?.trainable == true ? bias!.gradient() : nil, g)
        }
        if let dx = t.inputs[0] { try Convolution.backwardData(dy: grad, w: kernel.value, dx: dx, g) }
    }
}

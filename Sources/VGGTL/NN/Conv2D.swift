/// Keras' Conv2D: NHWC input, HWIO kernel, optional bias and fused ReLU.
public final class Conv2D: Layer {
    public let name: String
    public let kernel: Parameter
    public let bias: Parameter?
    public let filters: Int, kernelSize: (Int, Int), strides: (Int, Int), padding: Padding
    public let activation: Activation
    private var x: Tensor?, y: Tensor?, dyAct: Tensor?, dx: Tensor?
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

    public func outputShape(_ input: [Int]) throws -> [Int] {
        let g = try geometry(input)
        return g.outShape
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        let g = try geometry(x.shape)
        let y = try reuse(&self.y, g.outShape, on: x.device, what: "\(name) output")
        try Convolution.forward(x: x, w: kernel.value, bias: bias?.value, y: y, relu: activation == .relu, g)
        self.x = x; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard let x, let y, let g = geometry else { throw VGGTLError.invalidArgument("layer \(name): backward before forward") }
        let grad = activation == .relu ? try reluMasked(dy, output: y, scratch: &dyAct, what: "\(name) gradient", target: target) : dy
        if kernel.trainable {
            try Convolution.backwardFilter(x: x, dy: grad, dw: kernel.gradient(), db: bias?.trainable == true ? bias!.gradient() : nil, g)
        }
        guard inputGradient else { return nil }
        let dx = try gradientTensor(&self.dx, x.shape, on: x.device, what: "\(name) input gradient", target: target)
        try Convolution.backwardData(dy: grad, w: kernel.value, dx: dx, g)
        return dx
    }
}

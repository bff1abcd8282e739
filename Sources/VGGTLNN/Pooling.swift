import VGGTLTensors

/// Keras' MaxPooling2D / AveragePooling2D over NHWC. Average pooling divides by the window's
/// in-bounds positions (Keras, TensorFlow) or, with `countPadding`, also by its padding positions
/// (PyTorch's count_include_pad=True, as torchvision's Inception3 pools).
public final class Pool2D: UnaryLayer {
    public enum Kind: Sendable { case max, average }
    public let name: String
    public let kind: Kind, poolSize: (Int, Int), strides: (Int, Int), padding: Padding
    public let countPadding: Bool
    private var x: Tensor?
    private var geometry: WindowGeometry?

    public init(_ name: String, _ kind: Kind, poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                countPadding: Bool = false) {
        self.name = name; self.kind = kind; self.poolSize = poolSize; self.strides = strides ?? poolSize; self.padding = padding
        self.countPadding = countPadding
    }

    func geometry(_ s: [Int]) throws -> WindowGeometry {
        try windowGeometry(layer: name, input: s, kernel: poolSize, stride: strides, padding: padding)
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { try geometry(input).outShape }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = kind == .max
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let g = try geometry(x.shape)
        let y = try required(out)
        switch kind {
        case .max: x.device.maxPool(x.buffer, y.buffer, g)
        case .average: x.device.avgPool(x.buffer, y.buffer, g, countPadding: countPadding)
        }
        self.x = x; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        guard let x, let g = geometry else { throw backwardBeforeForward() }
        switch kind {
        case .max: x.device.maxPoolBackward(x.buffer, dy.buffer, dx.buffer, g)
        case .average: x.device.avgPoolBackward(dy.buffer, dx.buffer, g, countPadding: countPadding)
        }
    }
}

/// Keras' GlobalAveragePooling2D: (n, h, w, c) -> (n, c).
public final class GlobalAveragePooling2D: UnaryLayer {
    public let name: String
    private var inShape: [Int] = []
    public init(_ name: String) { self.name = name }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireRank(input, 4, layer: name)
        return [input[0], input[3]]
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = false
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let s = try outputShape(x.shape)
        let y = try required(out)
        x.device.globalAvgPool(x.buffer, y.buffer, batch: s[0], pixels: x.shape[1] * x.shape[2], channels: s[1])
        inShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        dy.device.globalAvgPoolBackward(dy.buffer, dx.buffer, batch: inShape[0], pixels: inShape[1] * inShape[2], channels: inShape[3])
    }
}

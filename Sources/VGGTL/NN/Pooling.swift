/// Keras' MaxPooling2D / AveragePooling2D over NHWC.
public final class Pool2D: Layer {
    public enum Kind: Sendable { case max, average }
    public let name: String
    public let kind: Kind, poolSize: (Int, Int), strides: (Int, Int), padding: Padding
    private var x: Tensor?, y: Tensor?, dx: Tensor?
    private var geometry: WindowGeometry?

    public init(_ name: String, _ kind: Kind, poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid) {
        self.name = name; self.kind = kind; self.poolSize = poolSize; self.strides = strides ?? poolSize; self.padding = padding
    }

    func geometry(_ s: [Int]) throws -> WindowGeometry {
        try windowGeometry(layer: name, input: s, kernel: poolSize, stride: strides, padding: padding)
    }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        let g = try geometry(input)
        return g.outShape
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        let g = try geometry(x.shape)
        let y = try reuse(&self.y, g.outShape, on: x.device, what: "\(name) output")
        switch kind {
        case .max: x.device.maxPool(x.buffer, y.buffer, g)
        case .average: x.device.avgPool(x.buffer, y.buffer, g)
        }
        self.x = x; geometry = g
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard inputGradient else { return nil }
        guard let x, let g = geometry else { throw VGGTLError.invalidArgument("layer \(name): backward before forward") }
        let dx = try gradientTensor(&self.dx, x.shape, on: x.device, what: "\(name) input gradient", target: target)
        switch kind {
        case .max: x.device.maxPoolBackward(x.buffer, dy.buffer, dx.buffer, g)
        case .average: x.device.avgPoolBackward(dy.buffer, dx.buffer, g)
        }
        return dx
    }
}

/// Keras' GlobalAveragePooling2D: (n, h, w, c) -> (n, c).
public final class GlobalAveragePooling2D: Layer {
    public let name: String
    private var inShape: [Int] = [], y: Tensor?, dx: Tensor?
    public init(_ name: String) { self.name = name }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireRank(input, 4, layer: name)
        return [input[0], input[3]]
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        let s = try outputShape(x.shape)
        let y = try reuse(&self.y, s, on: x.device, what: "\(name) output")
        x.device.globalAvgPool(x.buffer, y.buffer, batch: s[0], pixels: x.shape[1] * x.shape[2], channels: s[1])
        inShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard inputGradient else { return nil }
        let dx = try gradientTensor(&self.dx, inShape, on: dy.device, what: "\(name) input gradient", target: target)
        dy.device.globalAvgPoolBackward(dy.buffer, dx.buffer, batch: inShape[0], pixels: inShape[1] * inShape[2], channels: inShape[3])
        return dx
    }
}

/// Keras' Flatten: a view, no copy (NHWC order, as Keras flattens channels-last tensors).
public final class Flatten: Layer {
    public let name: String
    private var inShape: [Int] = []
    public init(_ name: String = "flatten") { self.name = name }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw VGGTLError.invalidArgument("layer \(name) needs a batch dimension, got \(input)") }
        return [input[0], input.dropFirst().reduce(1, *)]
    }
    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        inShape = x.shape
        return try x.reshape(outputShape(x.shape))
    }
    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        inputGradient ? try dy.reshape(inShape) : nil
    }
}

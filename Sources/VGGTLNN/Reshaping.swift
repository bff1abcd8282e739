import VGGTLTensors

/// Keras' Flatten: a view, no copy (NHWC order, as Keras flattens channels-last tensors).
public final class Flatten: UnaryLayer {
    public let name: String
    public init(_ name: String = "flatten") { self.name = name }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count >= 2 else { throw VGGTLError.invalidArgument("layer \(name) needs a batch dimension, got \(input)") }
        return [input[0], input.dropFirst().reduce(1, *)]
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .inputView }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        try x.reshape(outputShape(x.shape))
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {}
}

/// Keras' Reshape: a view with another per-sample shape, no copy (squeeze-and-excitation's
/// [n, c] -> [n, 1, 1, c] before its 1x1 convolutions). `targetShape` leaves out the batch.
public final class Reshape: UnaryLayer {
    public let name: String
    public let targetShape: [Int]
    public init(_ name: String, _ targetShape: [Int]) { self.name = name; self.targetShape = targetShape }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count >= 1, input.dropFirst().reduce(1, *) == targetShape.reduce(1, *) else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) reshape (per sample)", expected: targetShape, got: Array(input.dropFirst()))
        }
        return [input[0]] + targetShape
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .inputView }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        try x.reshape(outputShape(x.shape))
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {}
}

/// Keras' ZeroPadding2D: rows and columns of zeros around each image of an NHWC batch (ResNet50's
/// conv1_pad and pool1_pad). Forward fills the output with zeros and copies the image into it;
/// backward copies the gradient's interior back (a crop).
public final class ZeroPadding2D: UnaryLayer {
    public let name: String
    public let top: Int, bottom: Int, left: Int, right: Int
    private var inShape: [Int] = []

    public init(_ name: String, top: Int, bottom: Int, left: Int, right: Int) {
        self.name = name; self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }

    /// The same padding on all sides (Keras' ZeroPadding2D(padding=p)).
    public convenience init(_ name: String, _ p: Int) { self.init(name, top: p, bottom: p, left: p, right: p) }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireRank(input, 4, layer: name)
        guard min(top, bottom, left, right) >= 0 else { throw VGGTLError.invalidArgument("layer \(name): negative padding") }
        return [input[0], input[1] + top + bottom, input[2] + left + right, input[3]]
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = false
        return m
    }

    /// The image's rows inside the padded tensor (per image: H rows of W*C floats).
    private func interior(_ s: [Int]) -> (inner: BlockLayout, padded: BlockLayout, rows: Int, cols: Int) {
        let (h, w, c) = (s[1], s[2], s[3])
        let pw = w + left + right, ph = h + top + bottom
        return (BlockLayout(outerStride: h * w * c, rowStride: w * c),
                BlockLayout(offset: (top * pw + left) * c, outerStride: ph * pw * c, rowStride: pw * c), h, w * c)
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let y = try required(out), d = x.device
        let b = interior(x.shape)
        d.fill(y.buffer, value: 0, offset: 0, count: y.count)
        d.copyBlock(x.buffer, b.inner, to: y.buffer, b.padded, outer: x.shape[0], rows: b.rows, cols: b.cols)
        inShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        let b = interior(inShape)
        dy.device.copyBlock(dy.buffer, b.padded, to: dx.buffer, b.inner, outer: inShape[0], rows: b.rows, cols: b.cols)
    }
}

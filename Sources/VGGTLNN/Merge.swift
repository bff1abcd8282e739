import VGGTLTensors

/// Keras' Add: the elementwise sum of two or more tensors of one shape (ResNet's shortcuts). Its
/// gradient is dy for every input, which the network passes on without a copy.
public final class Add: Layer {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var inputArity: ClosedRange<Int> { 2...Int.max }

    public func outputShape(inputs: [[Int]]) throws -> [Int] {
        guard inputs.count >= 2 else { throw VGGTLError.invalidArgument("layer \(name) adds 2 or more inputs, got \(inputs.count)") }
        for s in inputs.dropFirst() where s != inputs[0] {
            throw VGGTLError.shapeMismatch(what: "layer \(name) inputs", expected: inputs[0], got: s)
        }
        return inputs[0]
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.inPlaceInputs = Array(inputs.indices)
        m.backwardReadsInputs = false
        m.inputGradients = .dy
        m.epilogues = [.relu]
        return m
    }

    public func forward(inputs: [Tensor], into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(inputs: inputs.map(\.shape))
        let y = try required(out), d = y.device
        let relu = context.epilogue == .relu
        for (i, x) in inputs.enumerated().dropFirst() {
            d.add(i == 1 ? inputs[0].buffer : y.buffer, x.buffer, y.buffer, count: y.count, relu: relu && i == inputs.count - 1)
        }
        return y
    }

    public func backward(_ dy: Tensor, _ g: GradientTargets, context: StepContext) throws {}
}

/// Keras' Concatenate on the channel axis (InceptionV3's mixed blocks). The network places the
/// inputs' producers so that they write straight into their channels of the output (see
/// `LayerMemory.writesChannelSlices`); an input that was not placed is copied here. Its gradient
/// is a channel slice of dy for each input: a view, no copy.
public final class Concatenate: Layer {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var inputArity: ClosedRange<Int> { 1...Int.max }

    public func outputShape(inputs: [[Int]]) throws -> [Int] {
        guard let first = inputs.first, first.count >= 2 else { throw VGGTLError.invalidArgument("layer \(name) needs inputs with a channel axis") }
        for s in inputs.dropFirst() where s.count != first.count || s.dropLast() != first.dropLast() {
            throw VGGTLError.shapeMismatch(what: "layer \(name) inputs (all but the channels must agree)", expected: first, got: s)
        }
        return Array(first.dropLast()) + [inputs.reduce(0) { $0 + $1.last! }]
    }

    /// Channels of the output that input i fills.
    public static func ranges(_ inputs: [[Int]]) -> [Range<Int>] {
        var start = 0
        return inputs.map { s in defer { start += s.last! }; return start..<(start + s.last!) }
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        m.backwardReadsInputs = false
        m.inputGradients = .channels(Self.ranges(inputs))
        m.writesChannelSlices = true
        return m
    }

    public func forward(inputs: [Tensor], into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(inputs: inputs.map(\.shape))
        let y = try required(out), d = y.device
        for (x, range) in zip(inputs, Self.ranges(inputs.map(\.shape))) {
            let slice = y.channels(range)
            if x.buffer === slice.buffer && x.offset == slice.offset && x.rowStride == slice.rowStride { continue }
            d.copyBlock(x.buffer, BlockLayout(offset: x.offset, rowStride: x.rowStride), to: y.buffer,
                        BlockLayout(offset: slice.offset, rowStride: slice.rowStride), outer: 1, rows: x.rows, cols: x.rowLength)
        }
        return y
    }

    public func backward(_ dy: Tensor, _ g: GradientTargets, context: StepContext) throws {}
}

import VGGTLTensors

/// A standalone activation of the newer backbones: Keras' ReLU(6.0) (MobileNetV2),
/// Activation('swish') and the sigmoid of squeeze-and-excitation (EfficientNet),
/// Activation('gelu') exact (ConvNeXt). The device computes it; the backward reads the input.
public final class PointwiseActivation: UnaryLayer {
    public let name: String
    public let function: PointwiseFunction
    private var x: Tensor?

    public init(_ name: String, _ function: PointwiseFunction) { self.name = name; self.function = function }
    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
        var m = LayerMemory()
        // dx = dy * f'(x) elementwise: it may take dy's storage. At inference nothing reads x
        // again, so the output may overwrite it.
        m.inputGradients = .computed(inPlace: true)
        if !context.isTraining { m.inPlaceInputs = [0] }
        return m
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let y = try required(out)
        x.device.pointwise(function, x.buffer, y.buffer, count: x.count)
        self.x = x
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let dx = t.inputs[0] else { return }
        guard let x else { throw backwardBeforeForward() }
        dy.device.pointwiseBackward(function, x.buffer, dy.buffer, dx.buffer, count: dy.count)
    }
}

/// The elementwise activations of the newer backbones, each computed by the device
/// (`Device.pointwise`, `Device.pointwiseBackward`): MobileNetV2's ReLU6, EfficientNet's
/// swish/SiLU and the sigmoid of its squeeze-and-excitation blocks, ConvNeXt's exact GELU.
public enum PointwiseFunction: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// min(max(x, 0), 6) (Keras' ReLU(6.0), torch's ReLU6).
    case relu6 = 0
    /// 1 / (1 + exp(-x)).
    case sigmoid = 1
    /// x * sigmoid(x) (Keras' swish, torch's SiLU).
    case swish = 2
    /// x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), the exact form (Keras' gelu(approximate=False),
    /// torch's GELU()), not the tanh approximation.
    case gelu = 3

    public var description: String {
        switch self {
        case .relu6: return "relu6"
        case .sigmoid: return "sigmoid"
        case .swish: return "swish"
        case .gelu: return "gelu"
        }
    }
}

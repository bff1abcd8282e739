import Foundation
import VGGTLTensors

/// The activations of the newer backbones (ReLU6, sigmoid, swish, exact GELU), forward and
/// backward from the input; Kernels/activation.cl computes them with the same formulas.
extension CPUDevice {
    public func pointwise(_ f: PointwiseFunction, _ xb: DeviceBuffer, _ yb: DeviceBuffer, count: Int) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(count, threads: threads, grain: 16384) { r in
            switch f {
            case .relu6: for i in r { y[i] = min(max(x[i], 0), 6) }
            case .sigmoid: for i in r { y[i] = logistic(x[i]) }
            case .swish: for i in r { let v = x[i]; y[i] = v * logistic(v) }
            case .gelu: for i in r { let v = x[i]; y[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752)) }
            }
        }
    }

    public func pointwiseBackward(_ f: PointwiseFunction, _ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dxb: DeviceBuffer, count: Int) {
        let x = cpu(xb), dy = cpu(dyb), dx = cpu(dxb)
        parallelChunks(count, threads: threads, grain: 16384) { r in
            switch f {
            case .relu6:
                for i in r { let v = x[i], g = dy[i]; dx[i] = v > 0 && v < 6 ? g : 0 }
            case .sigmoid:
                for i in r { let s = logistic(x[i]); dx[i] = dy[i] * (s * (1 - s)) }
            case .swish:
                for i in r { let v = x[i], s = logistic(v); dx[i] = dy[i] * (s * (1 + v * (1 - s))) }
            case .gelu:
                for i in r {
                    let v = x[i]
                    let cdf = 0.5 * (1 + erff(v * 0.70710678118654752))
                    let pdf = expf(-0.5 * v * v) * 0.39894228040143268
                    dx[i] = dy[i] * (cdf + v * pdf)
                }
            }
        }
    }
}

/// 1 / (1 + exp(-x)) without overflow for large |x|.
@inline(__always) func logistic(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

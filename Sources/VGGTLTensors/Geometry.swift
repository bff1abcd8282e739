/// Padding as Keras spells it, or explicit pixels per side (Keras' ZeroPadding2D folded in,
/// PyTorch's `padding=`): `explicit(top: 1, bottom: 1, left: 1, right: 1)` is PyTorch's padding=1,
/// which on even sizes with stride 2 differs from TensorFlow's 'same' (that pads bottom/right more).
public enum Padding: Hashable, Sendable, CustomStringConvertible {
    case same, valid
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    /// The same padding on every side (PyTorch's `padding=p`).
    public static func symmetric(_ p: Int) -> Padding { .explicit(top: p, bottom: p, left: p, right: p) }
    /// (rows, columns) padding on both sides of each (PyTorch's `padding=(ph, pw)`).
    public static func symmetric(_ ph: Int, _ pw: Int) -> Padding { .explicit(top: ph, bottom: ph, left: pw, right: pw) }

    public var description: String {
        switch self {
        case .same: return "same"
        case .valid: return "valid"
        case let .explicit(t, b, l, r): return "explicit(\(t),\(b),\(l),\(r))"
        }
    }
}

/// The shape arithmetic of a 2-D window op (convolution or pooling) over NHWC input.
/// Output size and padding follow TensorFlow: `same` gives ceil(in / stride) with the
/// smaller half of the padding on top/left; `valid` gives floor((in - k) / stride) + 1; explicit
/// padding gives floor((in + before + after - k) / stride) + 1. Kernels read padTop/padLeft as the
/// offset of the first window and treat everything outside the input as padding, so the bottom
/// and right padding only shows in outH/outW (padBottom/padRight keep it for printing and plans).
public struct WindowGeometry: Hashable, Sendable {
    public var batch: Int, inH: Int, inW: Int, inC: Int
    public var kH: Int, kW: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int
    public var padBottom: Int, padRight: Int
    public var outH: Int, outW: Int
    /// Output channels (convolution); equals inC for pooling.
    public var outC: Int

    public init(batch: Int, inH: Int, inW: Int, inC: Int, kernel: (Int, Int), stride: (Int, Int),
                padding: Padding, outC: Int? = nil) throws {
        guard batch > 0, inH > 0, inW > 0, inC > 0, kernel.0 > 0, kernel.1 > 0, stride.0 > 0, stride.1 > 0 else {
            throw VGGTLError.invalidArgument("window op: all sizes must be positive (input \(batch)x\(inH)x\(inW)x\(inC), kernel \(kernel), stride \(stride))")
        }
        self.batch = batch; self.inH = inH; self.inW = inW; self.inC = inC
        kH = kernel.0; kW = kernel.1; strideH = stride.0; strideW = stride.1
        self.outC = outC ?? inC
        switch padding {
        case .valid:
            guard inH >= kH, inW >= kW else {
                throw VGGTLError.inputTooSmall("input \(inH)x\(inW) is smaller than the \(kH)x\(kW) window with valid padding")
            }
            outH = (inH - kH) / strideH + 1; outW = (inW - kW) / strideW + 1
            padTop = 0; padLeft = 0; padBottom = 0; padRight = 0
        case .same:
            outH = (inH + strideH - 1) / strideH; outW = (inW + strideW - 1) / strideW
            let totalH = max((outH - 1) * strideH + kH - inH, 0), totalW = max((outW - 1) * strideW + kW - inW, 0)
            padTop = totalH / 2; padLeft = totalW / 2
            padBottom = totalH - padTop; padRight = totalW - padLeft
        case let .explicit(top, bottom, left, right):
            guard top >= 0, bottom >= 0, left >= 0, right >= 0, top < kH, bottom < kH, left < kW, right < kW else {
                throw VGGTLError.invalidArgument("window op: padding (top \(top), bottom \(bottom), left \(left), right \(right)) must be at least 0 and smaller than the \(kH)x\(kW) window")
            }
            let h = inH + top + bottom, w = inW + left + right
            guard h >= kH, w >= kW else {
                throw VGGTLError.inputTooSmall("input \(inH)x\(inW) padded to \(h)x\(w) is smaller than the \(kH)x\(kW) window")
            }
            outH = (h - kH) / strideH + 1; outW = (w - kW) / strideW + 1
            padTop = top; padLeft = left; padBottom = bottom; padRight = right
        }
    }

    /// Rows of the im2col matrix: one per output pixel.
    public var outPixels: Int { batch * outH * outW }
    /// Columns of the im2col matrix: one patch (kh, kw, c), channels fastest, matching HWIO.
    public var patchSize: Int { kH * kW * inC }
    public var inCount: Int { batch * inH * inW * inC }
    public var outCount: Int { batch * outH * outW * outC }
    /// The output's NHWC shape.
    public var outShape: [Int] { [batch, outH, outW, outC] }
}

extension WindowGeometry {
    /// The input pixels (flattened n*inH*inW + ih*inW + iw) that output rows
    /// [row0, row0+rows) read from: what a tiled col2im has to visit.
    public func inputPixelRange(row0: Int, rows: Int) -> Range<Int> {
        let perImage = outH * outW
        let first = row0, last = row0 + rows - 1
        let n0 = first / perImage, oh0 = (first % perImage) / outW
        let n1 = last / perImage, oh1 = (last % perImage) / outW
        let ihLo = max(oh0 * strideH - padTop, 0)
        let ihHi = min(oh1 * strideH - padTop + kH - 1, inH - 1)
        let lo = (n0 * inH + ihLo) * inW
        let hi = (n1 * inH + ihHi + 1) * inW
        return lo..<max(lo, hi)
    }
}

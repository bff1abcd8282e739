/// Padding as Keras spells it.
public enum Padding: String, Sendable {
    case same, valid
}

/// The shape arithmetic of a 2-D window op (convolution or pooling) over NHWC input.
/// Output size and padding follow TensorFlow: `same` gives ceil(in / stride) with the
/// smaller half of the padding on top/left; `valid` gives floor((in - k) / stride) + 1.
public struct WindowGeometry: Hashable, Sendable {
    public var batch: Int, inH: Int, inW: Int, inC: Int
    public var kH: Int, kW: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int
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
                throw VGGTLError.invalidArgument("input \(inH)x\(inW) is smaller than the \(kH)x\(kW) window with valid padding; use a larger --size")
            }
            outH = (inH - kH) / strideH + 1; outW = (inW - kW) / strideW + 1
            padTop = 0; padLeft = 0
        case .same:
            outH = (inH + strideH - 1) / strideH; outW = (inW + strideW - 1) / strideW
            padTop = max((outH - 1) * strideH + kH - inH, 0) / 2
            padLeft = max((outW - 1) * strideW + kW - inW, 0) / 2
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

/// Resizes with Pillow's BILINEAR filter (`Image.resize(size, Image.BILINEAR)`): a triangle
/// filter whose support widens by the scale factor when shrinking, so downscaling averages
/// (antialiased) instead of skipping pixels. Same 22-bit fixed-point coefficients, horizontal
/// pass first, 8-bit intermediate: results equal Pillow's.
public func resize(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    precondition(height > 0 && width > 0, "resize to \(width)x\(height): sides must be positive")
    precondition(image.width > 0 && image.height > 0, "resize of an empty \(image.width)x\(image.height) image")
    if image.width == width && image.height == height { return image }
    var current = image
    if width != image.width {
        current = resampleRows(current, outWidth: width)
    }
    if height != image.height {
        current = resampleColumns(current, outHeight: height)
    }
    return current
}

private let precisionBits = 32 - 8 - 2

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter: for each output
/// position, the first input index and the fixed-point weights of the inputs it reads.
private struct Coefficients {
    var first: [Int]
    var count: [Int]
    var weights: [Int32]  // `taps` per output position
    var taps: Int

    init(inSize: Int, outSize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let ss = 1.0 / filterScale
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let xmin = max(Int(center - support + 0.5), 0)  // Int() truncates like C's (int)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<xmax {
                var t = (Double(x + xmin) - center + 0.5) * ss
                if t < 0 { t = -t }
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                ww += w
            }
            for x in 0..<xmax {
                let w = ww != 0 ? k[x] / ww : k[x]
                let fixed = w * Double(1 << precisionBits)
                weights[xx * taps + x] = Int32(w < 0 ? (-0.5 + fixed) : (0.5 + fixed))
            }
            first[xx] = xmin
            count[xx] = xmax
        }
    }
}

@inline(__always)
private func clip8(_ v: Int32) -> UInt8 {
    let s = v >> Int32(precisionBits)
    return s < 0 ? 0 : (s > 255 ? 255 : UInt8(s))
}

private func resampleRows(_ image: RGBImage, outWidth: Int) -> RGBImage {
    let c = Coefficients(inSize: image.width, outSize: outWidth)
    let h = image.height, inStride = image.width * 3, outStride = outWidth * 3
    var out = [UInt8](repeating: 0, count: h * outStride)
    image.pixels.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            c.weights.withUnsafeBufferPointer { kk in
              c.first.withUnsafeBufferPointer { first in
                c.count.withUnsafeBufferPointer { count in
                for y in 0..<h {
                    let row = src.baseAddress! + y * inStride
                    let orow = dst.baseAddress! + y * outStride
                    for xx in 0..<outWidth {
                        let k = kk.baseAddress! + xx * c.taps
                        var s0: Int32 = 1 << Int32(precisionBits - 1), s1 = s0, s2 = s0
                        var p = row + first[xx] * 3
                        for x in 0..<count[xx] {
                            let w = k[x]
                            s0 &+= Int32(p[0]) &* w
                            s1 &+= Int32(p[1]) &* w
                            s2 &+= Int32(p[2]) &* w
                            p += 3
                        }
                        orow[3 * xx] = clip8(s0)
                        orow[3 * xx + 1] = clip8(s1)
                        orow[3 * xx + 2] = clip8(s2)
                    }
                }
                }
              }
            }
        }
    }
    return RGBImage(width: outWidth, height: h, pixels: out)
}

private func resampleColumns(_ image: RGBImage, outHeight: Int) -> RGBImage {
    let c = Coefficients(inSize: image.height, outSize: outHeight)
    let stride = image.width * 3
    var out = [UInt8](repeating: 0, count: outHeight * stride)
    var acc = [Int32](repeating: 0, count: stride)
    image.pixels.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            c.weights.withUnsafeBufferPointer { kk in
                acc.withUnsafeMutableBufferPointer { acc in
                    // Row by row (rather than pixel by pixel, as Pillow) keeps reads sequential;
                    // the integer sums are the same.
                    for yy in 0..<outHeight {
                        let k = kk.baseAddress! + yy * c.taps
                        for i in 0..<stride { acc[i] = 1 << Int32(precisionBits - 1) }
                        for y in 0..<c.count[yy] {
                            let w = k[y]
                            let row = src.baseAddress! + (c.first[yy] + y) * stride
                            for i in 0..<stride { acc[i] &+= Int32(row[i]) &* w }
                        }
                        let orow = dst.baseAddress! + yy * stride
                        for i in 0..<stride { orow[i] = clip8(acc[i]) }
                    }
                }
            }
        }
    }
    return RGBImage(width: image.width, height: outHeight, pixels: out)
}

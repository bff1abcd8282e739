import Dispatch
import VGGTLTensors

/// Depthwise convolution on the CPU: memory-bound, so no im2col and no GEMM. Every loop's
/// innermost index is the channel, contiguous in NHWC and in the [kH, kW, C] kernel, so it
/// vectorises; threads split the output (forward), the input (backward data, a gather: no two
/// threads write one place) or the output rows with per-thread partial sums (kernel gradient).
extension CPUDevice {
    public func depthwiseConv(_ xb: DeviceBuffer, _ wb: DeviceBuffer, bias: DeviceBuffer?, _ yb: DeviceBuffer, _ g: WindowGeometry) {
        let x = cpu(xb), w = cpu(wb), y = cpu(yb), b = bias.map(cpu), c = g.inC
        parallelChunks(g.batch * g.outH, threads: threads, grain: max(1, 32768 / max(g.outW * c * g.kH * g.kW, 1))) { range in
            for row in range {
                let n = row / g.outH, oh = row % g.outH
                for ow in 0..<g.outW {
                    let dst = y + (row * g.outW + ow) * c
                    if let b { dst.update(from: b, count: c) } else { dst.update(repeating: 0, count: c) }
                    forEachTap(g, n, oh, ow) { input, window in
                        let src = x + input, tap = w + window * c
                        for j in 0..<c { dst[j] += src[j] * tap[j] }
                    }
                }
            }
        }
    }

    public func depthwiseConvBackwardData(_ dyb: DeviceBuffer, _ wb: DeviceBuffer, _ dxb: DeviceBuffer, _ g: WindowGeometry) {
        let dy = cpu(dyb), w = cpu(wb), dx = cpu(dxb), c = g.inC
        parallelChunks(g.batch * g.inH, threads: threads, grain: max(1, 32768 / max(g.inW * c * g.kH * g.kW, 1))) { range in
            for row in range {
                let n = row / g.inH, ih = row % g.inH
                for iw in 0..<g.inW {
                    let dst = dx + (row * g.inW + iw) * c
                    dst.update(repeating: 0, count: c)
                    for kh in 0..<g.kH {
                        let th = ih + g.padTop - kh
                        guard th >= 0, th % g.strideH == 0, th / g.strideH < g.outH else { continue }
                        for kw in 0..<g.kW {
                            let tw = iw + g.padLeft - kw
                            guard tw >= 0, tw % g.strideW == 0, tw / g.strideW < g.outW else { continue }
                            let src = dy + ((n * g.outH + th / g.strideH) * g.outW + tw / g.strideW) * c
                            let tap = w + (kh * g.kW + kw) * c
                            for j in 0..<c { dst[j] += src[j] * tap[j] }
                        }
                    }
                }
            }
        }
    }

    /// Each thread sums its output rows' products in float per row and adds each row's sums
    /// to double partials, so the error stays that of one row's sum at any batch size.
    public func depthwiseConvBackwardFilter(_ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dwb: DeviceBuffer, _ g: WindowGeometry) {
        let x = cpu(xb), dy = cpu(dyb), dw = cpu(dwb), c = g.inC, taps = g.kH * g.kW * c
        let rows = g.batch * g.outH
        let chunks = min(threads, max(1, rows * g.outW * taps / 65536), rows)
        var partial = [Double](repeating: 0, count: chunks * taps)
        partial.withUnsafeMutableBufferPointer { acc in
            let accp = acc.baseAddress!
            DispatchQueue.concurrentPerform(iterations: chunks) { t in
                let total = accp + t * taps
                let rowSum = UnsafeMutablePointer<Float>.allocate(capacity: taps)
                defer { rowSum.deallocate() }
                for row in (rows * t / chunks)..<(rows * (t + 1) / chunks) {
                    let n = row / g.outH, oh = row % g.outH
                    rowSum.initialize(repeating: 0, count: taps)
                    for ow in 0..<g.outW {
                        let grad = dy + (row * g.outW + ow) * c
                        forEachTap(g, n, oh, ow) { input, window in
                            let src = x + input, dst = rowSum + window * c
                            for j in 0..<c { dst[j] += grad[j] * src[j] }
                        }
                    }
                    for j in 0..<taps { total[j] += Double(rowSum[j]) }
                }
            }
        }
        for j in 0..<taps {
            var s = 0.0
            for t in 0..<chunks { s += partial[t * taps + j] }
            dw[j] = Float(s)
        }
    }
}

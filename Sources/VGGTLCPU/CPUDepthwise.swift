import Dispatch
import VGGTLTensors

/// Depthwise convolution on the CPU: no im2col and no GEMM. Each output (forward) or input
/// (backward data, a gather: no two threads write one place) pixel first lists the in-image taps
/// of its window, then sums them block by block of channels in SIMD registers: channels are
/// contiguous in NHWC and in the [kH, kW, C] kernel, and each pixel is written once. Threads
/// split the rows; the kernel gradient sums per thread and adds the threads' partials.
extension CPUDevice {
    public func depthwiseConv(_ xb: DeviceBuffer, _ wb: DeviceBuffer, bias: DeviceBuffer?, _ yb: DeviceBuffer, _ g: WindowGeometry) {
        let x = cpu(xb), w = cpu(wb), y = cpu(yb), b = bias.map(cpu), c = g.inC
        parallelChunks(g.batch * g.outH, threads: threads, grain: max(1, 32768 / max(g.outW * c * g.kH * g.kW, 1))) { range in
            let taps = UnsafeMutablePointer<Int>.allocate(capacity: 2 * g.kH * g.kW)
            defer { taps.deallocate() }
            for row in range {
                let n = row / g.outH, oh = row % g.outH
                for ow in 0..<g.outW {
                    var count = 0
                    forEachTap(g, n, oh, ow) { input, window in
                        taps[2 * count] = input; taps[2 * count + 1] = window * c; count += 1
                    }
                    sumTaps(into: y + (row * g.outW + ow) * c, start: b, taps, count, x, w, channels: c)
                }
            }
        }
    }

    public func depthwiseConvBackwardData(_ dyb: DeviceBuffer, _ wb: DeviceBuffer, _ dxb: DeviceBuffer, _ g: WindowGeometry) {
        let dy = cpu(dyb), w = cpu(wb), dx = cpu(dxb), c = g.inC
        parallelChunks(g.batch * g.inH, threads: threads, grain: max(1, 32768 / max(g.inW * c * g.kH * g.kW, 1))) { range in
            let taps = UnsafeMutablePointer<Int>.allocate(capacity: 2 * g.kH * g.kW)
            defer { taps.deallocate() }
            for row in range {
                let n = row / g.inH, ih = row % g.inH
                for iw in 0..<g.inW {
                    // The outputs whose windows read (ih, iw), in window order.
                    var count = 0
                    forEachReader(g, n, ih, iw) { output, window in
                        taps[2 * count] = output * c; taps[2 * count + 1] = window * c; count += 1
                    }
                    sumTaps(into: dx + (row * g.inW + iw) * c, start: nil, taps, count, dy, w, channels: c)
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

/// dst[j] = start[j] (or 0) + sum over t < count of a[taps[2t] + j] * b[taps[2t + 1] + j], for
/// j < channels: the sum kept in registers over all taps, 32 then 8 channels at a time, added
/// in tap order (the OpenCL kernels' order, so the two agree to rounding).
@inline(__always)
private func sumTaps(into dst: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>?, _ taps: UnsafeMutablePointer<Int>,
                     _ count: Int, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, channels c: Int) {
    typealias V16 = SIMD16<Float>
    typealias V8 = SIMD8<Float>
    @inline(__always) func load<V: SIMD>(_ p: UnsafeMutablePointer<Float>, _ type: V.Type) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
    var j = 0
    while j + 32 <= c {
        var s0 = start.map { load($0 + j, V16.self) } ?? V16(), s1 = start.map { load($0 + j + 16, V16.self) } ?? V16()
        for t in 0..<count {
            let pa = a + taps[2 * t] + j, pb = b + taps[2 * t + 1] + j
            s0 += load(pa, V16.self) * load(pb, V16.self)
            s1 += load(pa + 16, V16.self) * load(pb + 16, V16.self)
        }
        store(s0, dst + j); store(s1, dst + j + 16)
        j += 32
    }
    while j + 8 <= c {
        var s = start.map { load($0 + j, V8.self) } ?? V8()
        for t in 0..<count { s += load(a + taps[2 * t] + j, V8.self) * load(b + taps[2 * t + 1] + j, V8.self) }
        store(s, dst + j)
        j += 8
    }
    while j < c {
        var s = start.map { $0[j] } ?? 0
        for t in 0..<count { s += a[taps[2 * t] + j] * b[taps[2 * t + 1] + j] }
        dst[j] = s
        j += 1
    }
}

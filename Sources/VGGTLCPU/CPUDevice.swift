import Foundation
import VGGTLTensors

final class CPUBuffer: DeviceBuffer {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(count: Int) {
        self.count = count
        // 64-byte alignment for AVX-512 loads.
        p = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
    }
    deinit { p.deallocate() }
}

@inline(__always) func cpu(_ b: DeviceBuffer) -> UnsafeMutablePointer<Float> { (b as! CPUBuffer).p }

/// The CPU backend: GEMM through OpenBLAS, everything else as plain loops over raw pointers,
/// split across `threads` cores. Convolutions run through its plans (CPUConvolution.swift):
/// Winograd, per-thread im2col tiles, GEMM for 1x1, the generic im2col path otherwise.
public final class CPUDevice: Device {
    public let kind = DeviceKind.cpu
    public let processor = Processor.cpu
    public let threads: Int
    /// Tuning knobs, fixed when the device opens.
    public let options: Options
    let blas: OpenBLAS
    /// Scratch memory of this device's convolutions.
    let workspace = Workspace()

    public init(threads: Int? = nil, options: Options = Options()) throws {
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.options = options
        blas = try OpenBLAS.shared(coreType: options.openblasCoreType)
        blas.setThreadCount(self.threads)
    }

    /// The CPU has no failure state: its errors are thrown where they happen.
    public func checkHealthy() throws {}

    /// At least `count` floats of this device's workspace.
    func workspacePointer(_ count: Int) throws -> UnsafeMutablePointer<Float> {
        cpu(try workspace.get(count, on: self))
    }

    public var name: String { "cpu (\(CPUInfo.modelName), \(threads) threads, OpenBLAS \(blas.coreName) kernels)" }
    public var blasKernels: String { blas.coreName }
    public var blasKernelSource: String { blas.coreSource }

    public func allocate(_ count: Int, what: String) throws -> DeviceBuffer { CPUBuffer(count: count) }
    public func write(_ values: UnsafeBufferPointer<Float>, to: DeviceBuffer, offset: Int) {
        (cpu(to) + offset).update(from: values.baseAddress!, count: values.count)
    }
    public func read(_ buffer: DeviceBuffer, offset: Int, into: UnsafeMutableBufferPointer<Float>) {
        into.baseAddress!.update(from: cpu(buffer) + offset, count: into.count)
    }
    public func copy(_ src: DeviceBuffer, srcOffset: Int, to dst: DeviceBuffer, dstOffset: Int, count: Int) {
        (cpu(dst) + dstOffset).update(from: cpu(src) + srcOffset, count: count)
    }
    public func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        (cpu(buffer) + offset).update(repeating: value, count: count)
    }
    public func synchronize() {}

    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                     beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int) {
        blas.sgemm(101, transA ? 112 : 111, transB ? 112 : 111, Int32(m), Int32(n), Int32(k), alpha,
                   cpu(a) + aOffset, Int32(lda), cpu(b) + bOffset, Int32(ldb), beta, cpu(c) + cOffset, Int32(ldc))
    }

    public func im2col(_ xb: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, col: DeviceBuffer) {
        im2col(cpu(xb), g, row0: row0, rows: rows, col: cpu(col), threads: threads)
    }

    func im2col(_ x: UnsafeMutablePointer<Float>, _ g: WindowGeometry, row0: Int, rows: Int, col out: UnsafeMutablePointer<Float>, threads: Int) {
        let c = g.inC, patch = g.patchSize
        parallelChunks(rows, threads: threads, grain: 64) { range in
            for r in range {
                let p = row0 + r
                let n = p / (g.outH * g.outW), oh = (p / g.outW) % g.outH, ow = p % g.outW
                var dst = out + r * patch
                for kh in 0..<g.kH {
                    let ih = oh * g.strideH - g.padTop + kh
                    for kw in 0..<g.kW {
                        let iw = ow * g.strideW - g.padLeft + kw
                        if ih >= 0, ih < g.inH, iw >= 0, iw < g.inW {
                            let src = x + ((n * g.inH + ih) * g.inW + iw) * c
                            if c < 16 { for j in 0..<c { dst[j] = src[j] } } else { dst.update(from: src, count: c) }
                        } else {
                            if c < 16 { for j in 0..<c { dst[j] = 0 } } else { dst.update(repeating: 0, count: c) }
                        }
                        dst += c
                    }
                }
            }
        }
    }

    public func col2imAdd(_ dcolb: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, dx dxb: DeviceBuffer) {
        // Gather form: each input pixel sums the patch entries that read it, so threads never
        // write the same memory.
        let dcol = cpu(dcolb), dx = cpu(dxb), c = g.inC, patch = g.patchSize
        let pixels = g.inputPixelRange(row0: row0, rows: rows)
        parallelChunks(pixels.count, threads: threads, grain: 16) { range in
            for q in range {
                let pix = pixels.lowerBound + q
                let n = pix / (g.inH * g.inW), ih = (pix / g.inW) % g.inH, iw = pix % g.inW
                let dst = dx + pix * c
                forEachReader(g, n, ih, iw) { output, window in
                    let r = output - row0
                    guard r >= 0, r < rows else { return }
                    let src = dcol + r * patch + window * c
                    for j in 0..<c { dst[j] += src[j] }
                }
            }
        }
    }

    public func addBias(_ yb: DeviceBuffer, bias: DeviceBuffer, rows: Int, channels: Int) {
        let y = cpu(yb), b = cpu(bias)
        parallelChunks(rows, threads: threads, grain: max(1, 65536 / channels)) { range in
            for r in range { let row = y + r * channels; for j in 0..<channels { row[j] += b[j] } }
        }
    }

    /// Per-channel sums over the rows of a rows x channels matrix, split by rows across threads.
    /// `kind` selects the summand: x, (x - a)^2, or x * (y - a) * b. Rows are summed in Float in
    /// blocks of 64 (a vectorisable inner loop over channels) and the blocks in Double, so the
    /// error stays that of 64-term float sums at any batch size.
    private enum ColumnSum { case plain, squaredDeviation, scaledProduct }
    private func columnSums(_ kind: ColumnSum, _ xp: UnsafeMutablePointer<Float>, rows: Int, channels: Int,
                            y yp: UnsafeMutablePointer<Float>? = nil, a: [Float] = [], b: [Float] = []) -> [Double] {
        let chunks = min(threads, max(1, rows * channels / 65536))
        var partial = [Double](repeating: 0, count: chunks * channels)
        partial.withUnsafeMutableBufferPointer { acc in
            let accp = acc.baseAddress!
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                DispatchQueue.concurrentPerform(iterations: chunks) { t in
                    let total = accp + t * channels
                    let block = UnsafeMutablePointer<Float>.allocate(capacity: channels)
                    defer { block.deallocate() }
                    var r = rows * t / chunks
                    let end = rows * (t + 1) / chunks
                    while r < end {
                        block.initialize(repeating: 0, count: channels)
                        for row in r..<min(r + 64, end) {
                            let x = xp + row * channels
                            switch kind {
                            case .plain:
                                for j in 0..<channels { block[j] += x[j] }
                            case .squaredDeviation:
                                for j in 0..<channels { let d = x[j] - a[j]; block[j] += d * d }
                            case .scaledProduct:
                                let y = yp! + row * channels
                                for j in 0..<channels { block[j] += x[j] * ((y[j] - a[j]) * b[j]) }
                            }
                        }
                        for j in 0..<channels { total[j] += Double(block[j]) }
                        r += 64
                    }
                }
            } }
        }
        var total = [Double](repeating: 0, count: channels)
        for t in 0..<chunks { for j in 0..<channels { total[j] += partial[t * channels + j] } }
        return total
    }

    /// Runs `body(row)` for every row of a rows x channels matrix, rows split across threads;
    /// the body's inner loop over channels vectorises (no per-element index arithmetic).
    @inline(__always)
    private func eachRow(_ rows: Int, channels: Int, _ body: (Int) -> Void) {
        parallelChunks(rows, threads: threads, grain: max(1, 65536 / max(channels, 1))) { range in
            for r in range { body(r) }
        }
    }

    public func biasGradient(_ dyb: DeviceBuffer, rows: Int, channels: Int, db: DeviceBuffer, accumulate: Bool) {
        let dy = cpu(dyb), out = cpu(db)
        let sums = columnSums(.plain, dy, rows: rows, channels: channels)
        for j in 0..<channels { out[j] = (accumulate ? out[j] : 0) + Float(sums[j]) }
    }

    @inline(__always)
    private func map(_ count: Int, _ body: (Int) -> Void) {
        parallelChunks(count, threads: threads, grain: 65536) { range in for i in range { body(i) } }
    }

    public func relu(_ xb: DeviceBuffer, _ yb: DeviceBuffer, count: Int) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(count, threads: threads, grain: 65536) { r in
            for i in r { y[i] = max(x[i], 0) }
        }
    }
    public func reluBackward(_ yb: DeviceBuffer, _ dyb: DeviceBuffer, _ dxb: DeviceBuffer, count: Int) {
        let y = cpu(yb), dy = cpu(dyb), dx = cpu(dxb)
        parallelChunks(count, threads: threads, grain: 65536) { r in
            for i in r { let g = dy[i]; dx[i] = y[i] > 0 ? g : 0 }
        }
    }
    public func scale(_ xb: DeviceBuffer, _ yb: DeviceBuffer, count: Int, by s: Float) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(count, threads: threads, grain: 65536) { r in
            for i in r { y[i] = x[i] * s }
        }
    }
    public func axpy(alpha: Float, _ xb: DeviceBuffer, _ yb: DeviceBuffer, count: Int) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(count, threads: threads, grain: 65536) { r in
            for i in r { y[i] += alpha * x[i] }
        }
    }

    public func add(_ ab: DeviceBuffer, _ bb: DeviceBuffer, _ yb: DeviceBuffer, count: Int, relu: Bool) {
        let a = cpu(ab), b = cpu(bb), y = cpu(yb)
        parallelChunks(count, threads: threads, grain: 65536) { r in
            if relu { for i in r { y[i] = max(a[i] + b[i], 0) } } else { for i in r { y[i] = a[i] + b[i] } }
        }
    }

    public func copyBlock(_ srcb: DeviceBuffer, _ s: BlockLayout, to dstb: DeviceBuffer, _ d: BlockLayout, outer: Int, rows: Int, cols: Int) {
        let src = cpu(srcb), dst = cpu(dstb)
        parallelChunks(outer * rows, threads: threads, grain: max(1, 65536 / max(cols, 1))) { range in
            for q in range {
                let o = q / rows, r = q % rows
                (dst + d.offset + o * d.outerStride + r * d.rowStride)
                    .update(from: src + s.offset + o * s.outerStride + r * s.rowStride, count: cols)
            }
        }
    }

    public func reluRows(_ xb: DeviceBuffer, _ xl: RowLayout, _ yb: DeviceBuffer, _ yl: RowLayout, rows: Int, cols: Int) {
        let x = cpu(xb) + xl.offset, y = cpu(yb) + yl.offset
        eachRow(rows, channels: cols) { r in
            let xr = x + r * xl.stride, yr = y + r * yl.stride
            for j in 0..<cols { yr[j] = max(xr[j], 0) }
        }
    }

    public func reluBackwardRows(_ yb: DeviceBuffer, _ yl: RowLayout, _ dyb: DeviceBuffer, _ dyl: RowLayout,
                                 _ dxb: DeviceBuffer, _ dxl: RowLayout, rows: Int, cols: Int) {
        let y = cpu(yb) + yl.offset, dy = cpu(dyb) + dyl.offset, dx = cpu(dxb) + dxl.offset
        eachRow(rows, channels: cols) { r in
            let yr = y + r * yl.stride, dyr = dy + r * dyl.stride, dxr = dx + r * dxl.stride
            for j in 0..<cols { let g = dyr[j]; dxr[j] = yr[j] > 0 ? g : 0 }
        }
    }

    /// Calls body(outputPixel, n, oh, ow) over all output pixels, in parallel.
    private func forEachOutputPixel(_ g: WindowGeometry, _ body: (Int, Int, Int, Int) -> Void) {
        parallelChunks(g.outPixels, threads: threads, grain: 64) { range in
            for p in range { body(p, p / (g.outH * g.outW), (p / g.outW) % g.outH, p % g.outW) }
        }
    }

    /// Calls `tap` with the element offset of every in-image input pixel under the window of
    /// output pixel (n, oh, ow), in row-major window order (padding taps are skipped), and the
    /// index kh * kW + kw of its place in the window.
    @inline(__always)
    func forEachTap(_ g: WindowGeometry, _ n: Int, _ oh: Int, _ ow: Int, _ tap: (_ input: Int, _ window: Int) -> Void) {
        for kh in 0..<g.kH {
            let ih = oh * g.strideH - g.padTop + kh
            guard ih >= 0, ih < g.inH else { continue }
            for kw in 0..<g.kW {
                let iw = ow * g.strideW - g.padLeft + kw
                guard iw >= 0, iw < g.inW else { continue }
                tap(((n * g.inH + ih) * g.inW + iw) * g.inC, kh * g.kW + kw)
            }
        }
    }

    /// The mirror of `forEachTap`: for input pixel (n, ih, iw), calls `reader` with the index
    /// (n * outH + oh) * outW + ow of each output pixel whose window reads it, in window order,
    /// and the index kh * kW + kw of the place it has in that window.
    @inline(__always)
    func forEachReader(_ g: WindowGeometry, _ n: Int, _ ih: Int, _ iw: Int, _ reader: (_ output: Int, _ window: Int) -> Void) {
        for kh in 0..<g.kH {
            let th = ih + g.padTop - kh
            guard th >= 0, th % g.strideH == 0, th / g.strideH < g.outH else { continue }
            for kw in 0..<g.kW {
                let tw = iw + g.padLeft - kw
                guard tw >= 0, tw % g.strideW == 0, tw / g.strideW < g.outW else { continue }
                reader((n * g.outH + th / g.strideH) * g.outW + tw / g.strideW, kh * g.kW + kw)
            }
        }
    }

    public func maxPool(_ xb: DeviceBuffer, _ yb: DeviceBuffer, _ g: WindowGeometry) {
        let x = cpu(xb), y = cpu(yb), c = g.inC
        forEachOutputPixel(g) { p, n, oh, ow in
            let dst = y + p * c
            var first = true
            forEachTap(g, n, oh, ow) { base, _ in
                let src = x + base
                if first { dst.update(from: src, count: c); first = false }
                else { for j in 0..<c { dst[j] = max(dst[j], src[j]) } }
            }
        }
    }

    public func maxPoolBackward(_ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dxb: DeviceBuffer, _ g: WindowGeometry) {
        let x = cpu(xb), dy = cpu(dyb), dx = cpu(dxb), c = g.inC
        if g.kH == 2, g.kW == 2, g.strideH == 2, g.strideW == 2, g.padTop == 0, g.padLeft == 0, g.outH * 2 <= g.inH, g.outW * 2 <= g.inW {
            maxPool2x2Backward(x, dy, dx, g)
            return
        }
        // General windows (which may overlap): each image scatters its gradients to the first
        // maximum of each window; images run in parallel.
        dx.update(repeating: 0, count: g.inCount)
        parallelChunks(g.batch, threads: threads, grain: 1) { images in
            var best = [Int](repeating: 0, count: c)
            for n in images {
                for oh in 0..<g.outH { for ow in 0..<g.outW {
                    var first = true
                    forEachTap(g, n, oh, ow) { base, _ in
                        if first { for j in 0..<c { best[j] = base + j }; first = false }
                        else { for j in 0..<c where x[base + j] > x[best[j]] { best[j] = base + j } }
                    }
                    let src = dy + ((n * g.outH + oh) * g.outW + ow) * c
                    for j in 0..<c { dx[best[j]] += src[j] }
                } }
            }
        }
    }

    /// 2x2 stride-2 windows (VGG's pools) never overlap: every input row pair is written once,
    /// the first maximum of each window (row-major order) taking the gradient, branch-free.
    private func maxPool2x2Backward(_ x: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                                    _ dx: UnsafeMutablePointer<Float>, _ g: WindowGeometry) {
        let c = g.inC, inW = g.inW, inH = g.inH, outW = g.outW, outH = g.outH
        // One task per input row pair (n, oh); rows past 2 * outH (odd heights) get zeros.
        parallelChunks(g.batch * inH, threads: threads, grain: 8) { rows in
            for row in rows {
                let n = row / inH, ih = row % inH
                let line = dx + (n * inH + ih) * inW * c
                if ih >= 2 * outH { line.update(repeating: 0, count: inW * c); continue }
                guard ih % 2 == 0 else { continue }
                let line1 = line + inW * c
                let xl0 = x + (n * inH + ih) * inW * c, xl1 = xl0 + inW * c
                for ow in 0..<outW {
                    let o = 2 * ow * c
                    let a = xl0 + o, b = a + c, cc = xl1 + o, d = cc + c
                    let da = line + o, db = da + c, dc = line1 + o, dd = dc + c
                    let src = dy + ((n * outH + ih / 2) * outW + ow) * c
                    for j in 0..<c {
                        let va = a[j], vb = b[j], vc = cc[j], vd = d[j], gj = src[j]
                        let m = max(max(va, vb), max(vc, vd))
                        // The gradient passes down the window order until the first maximum takes it
                        // (float selects only, so the loop vectorises).
                        da[j] = va == m ? gj : 0
                        let r1 = va == m ? 0 : gj
                        db[j] = vb == m ? r1 : 0
                        let r2 = vb == m ? 0 : r1
                        dc[j] = vc == m ? r2 : 0
                        dd[j] = vc == m ? 0 : r2
                    }
                }
                if 2 * outW < inW {
                    let tail = (inW - 2 * outW) * c
                    (line + 2 * outW * c).update(repeating: 0, count: tail)
                    (line1 + 2 * outW * c).update(repeating: 0, count: tail)
                }
            }
        }
    }

    /// Number of input positions under the window at (oh, ow) that the average divides by: the
    /// in-bounds ones, or with `countPadding` also the padding ones (PyTorch's count_include_pad).
    @inline(__always) private func windowCount(_ g: WindowGeometry, _ oh: Int, _ ow: Int, countPadding: Bool) -> Int {
        let h0 = oh * g.strideH - g.padTop, w0 = ow * g.strideW - g.padLeft
        if countPadding {
            return (min(h0 + g.kH, g.inH + g.padBottom) - h0) * (min(w0 + g.kW, g.inW + g.padRight) - w0)
        }
        let hs = min(h0 + g.kH, g.inH) - max(h0, 0), ws = min(w0 + g.kW, g.inW) - max(w0, 0)
        return max(hs, 0) * max(ws, 0)
    }

    public func avgPool(_ xb: DeviceBuffer, _ yb: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        let x = cpu(xb), y = cpu(yb), c = g.inC
        forEachOutputPixel(g) { p, n, oh, ow in
            let dst = y + p * c
            dst.update(repeating: 0, count: c)
            forEachTap(g, n, oh, ow) { base, _ in
                let src = x + base
                for j in 0..<c { dst[j] += src[j] }
            }
            let inv = 1 / Float(windowCount(g, oh, ow, countPadding: countPadding))
            for j in 0..<c { dst[j] *= inv }
        }
    }

    public func avgPoolBackward(_ dyb: DeviceBuffer, _ dxb: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        let dy = cpu(dyb), dx = cpu(dxb), c = g.inC
        dx.update(repeating: 0, count: g.inCount)
        parallelChunks(g.batch, threads: threads, grain: 1) { images in
            for n in images { for oh in 0..<g.outH { for ow in 0..<g.outW {
                let inv = 1 / Float(windowCount(g, oh, ow, countPadding: countPadding))
                let src = dy + ((n * g.outH + oh) * g.outW + ow) * c
                forEachTap(g, n, oh, ow) { base, _ in
                    let dst = dx + base
                    for j in 0..<c { dst[j] += src[j] * inv }
                }
            } } }
        }
    }

    public func globalAvgPool(_ xb: DeviceBuffer, _ yb: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(batch, threads: threads, grain: 1) { images in
            for n in images {
                let dst = y + n * channels
                dst.update(repeating: 0, count: channels)
                for q in 0..<pixels { let src = x + (n * pixels + q) * channels; for j in 0..<channels { dst[j] += src[j] } }
                let inv = 1 / Float(pixels)
                for j in 0..<channels { dst[j] *= inv }
            }
        }
    }

    public func globalAvgPoolBackward(_ dyb: DeviceBuffer, _ dxb: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let dy = cpu(dyb), dx = cpu(dxb), inv = 1 / Float(pixels)
        map(batch * pixels * channels) { i in dx[i] = dy[(i / (pixels * channels)) * channels + i % channels] * inv }
    }

    public func channelMeanVariance(_ xb: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer) {
        let x = cpu(xb), mp = cpu(mean), vp = cpu(variance)
        let mu = columnSums(.plain, x, rows: rows, channels: channels).map { $0 / Double(rows) }
        let sq = columnSums(.squaredDeviation, x, rows: rows, channels: channels, a: mu.map { Float($0) })
        for j in 0..<channels { mp[j] = Float(mu[j]); vp[j] = Float(sq[j] / Double(rows)) }
    }

    public func batchNormApply(_ xb: DeviceBuffer, _ yb: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer,
                               variance: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, epsilon: Float, relu: Bool) {
        let x = cpu(xb), y = cpu(yb), m = cpu(mean), v = cpu(variance), ga = cpu(gamma), be = cpu(beta)
        let scale = (0..<channels).map { ga[$0] / (v[$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { be[$0] - m[$0] * scale[$0] }
        scale.withUnsafeBufferPointer { s in shift.withUnsafeBufferPointer { t in
            let s = s.baseAddress!, t = t.baseAddress!
            eachRow(rows, channels: channels) { r in
                let xr = x + r * channels, yr = y + r * channels
                if relu {
                    for j in 0..<channels { yr[j] = max(xr[j] * s[j] + t[j], 0) }
                } else {
                    for j in 0..<channels { yr[j] = xr[j] * s[j] + t[j] }
                }
            }
        } }
    }

    public func batchNormUpdateRunning(runningMean: DeviceBuffer, runningVariance: DeviceBuffer, mean: DeviceBuffer,
                                       variance: DeviceBuffer, channels: Int, rows: Int, momentum: Float) {
        let rm = cpu(runningMean), rv = cpu(runningVariance), m = cpu(mean), v = cpu(variance)
        let unbias = Float(rows) / Float(max(rows - 1, 1))
        for j in 0..<channels {
            rm[j] = momentum * rm[j] + (1 - momentum) * m[j]
            rv[j] = momentum * rv[j] + (1 - momentum) * v[j] * unbias
        }
    }

    public func batchNormBackward(_ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dxb: DeviceBuffer, rows: Int, channels: Int,
                                  mean: DeviceBuffer, variance: DeviceBuffer, gamma: DeviceBuffer, epsilon: Float,
                                  dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        let x = cpu(xb), dy = cpu(dyb), dx = cpu(dxb), m = cpu(mean), v = cpu(variance), ga = cpu(gamma)
        let inv = (0..<channels).map { 1 / (v[$0] + epsilon).squareRoot() }
        let sumDy = columnSums(.plain, dy, rows: rows, channels: channels)
        let sumDyXhat = columnSums(.scaledProduct, dy, rows: rows, channels: channels, y: x,
                                   a: (0..<channels).map { m[$0] }, b: inv)
        let dg = cpu(dgamma), db = cpu(dbeta)
        for j in 0..<channels { dg[j] = Float(sumDyXhat[j]); db[j] = Float(sumDy[j]) }
        // dx = a (n dy - sum dy - xhat sum(dy xhat)) with xhat = (x - m) inv, folded per channel
        // into dx = p dy + q (x - m) + c.
        let n = Float(rows)
        var coefficients = [Float](repeating: 0, count: 3 * channels)
        for j in 0..<channels {
            let a = ga[j] * inv[j] / n
            coefficients[j] = a * n
            coefficients[channels + j] = -a * Float(sumDyXhat[j]) * inv[j]
            coefficients[2 * channels + j] = -a * Float(sumDy[j])
        }
        coefficients.withUnsafeBufferPointer { cb in
            let p = cb.baseAddress!, q = p + channels, c = p + 2 * channels
            eachRow(rows, channels: channels) { r in
                let xr = x + r * channels, dyr = dy + r * channels, dxr = dx + r * channels
                for j in 0..<channels { dxr[j] = p[j] * dyr[j] + q[j] * (xr[j] - m[j]) + c[j] }
            }
        }
    }

    public func dropout(_ xb: DeviceBuffer, _ yb: DeviceBuffer, count: Int, rate: Float, seed: UInt32, indexOffset: UInt32) {
        let x = cpu(xb), y = cpu(yb), s = 1 / (1 - rate)
        map(count) { i in y[i] = dropoutKeep(seed: seed, index: UInt32(truncatingIfNeeded: i) &+ indexOffset, rate: rate) ? x[i] * s : 0 }
    }

    public func softmaxCrossEntropy(_ logitsb: DeviceBuffer, labels: DeviceBuffer, rows: Int, classes: Int,
                                    loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        let z = cpu(logitsb), lab = cpu(labels), l = cpu(loss), g = cpu(dlogits), cw = classWeights.map(cpu)
        parallelChunks(rows, threads: threads, grain: 64) { range in
            for r in range {
                let row = z + r * classes, grow = g + r * classes
                var mx = row[0]
                for j in 1..<max(classes, 1) { mx = max(mx, row[j]) }
                var sum: Float = 0
                for j in 0..<classes { sum += expf(row[j] - mx) }
                let y = Int(lab[r]), logSum = logf(sum), w = cw.map { $0[y] } ?? 1
                l[r] = (logSum - (row[y] - mx)) * w
                let scale = gradScale * w
                for j in 0..<classes { grow[j] = (expf(row[j] - mx - logSum) - (j == y ? 1 : 0)) * scale }
            }
        }
    }

    public func sigmoidBinaryCrossEntropy(_ logitsb: DeviceBuffer, targets: DeviceBuffer, count: Int,
                                          loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        let z = cpu(logitsb), t = cpu(targets), l = cpu(loss), g = cpu(dlogits), cw = classWeights.map(cpu)
        map(count) { i in
            let zi = z[i], ti = t[i], w = cw.map { ti * $0[1] + (1 - ti) * $0[0] } ?? 1
            l[i] = (max(zi, 0) - zi * ti + log1pf(expf(-abs(zi)))) * w
            g[i] = (1 / (1 + expf(-zi)) - ti) * (gradScale * w)
        }
    }

    public func softmax(_ xb: DeviceBuffer, _ yb: DeviceBuffer, rows: Int, classes: Int) {
        let x = cpu(xb), y = cpu(yb)
        parallelChunks(rows, threads: threads, grain: 64) { range in
            for r in range {
                let row = x + r * classes, out = y + r * classes
                var mx = row[0]
                for j in 0..<classes { mx = max(mx, row[j]) }
                var sum: Float = 0
                for j in 0..<classes { out[j] = expf(row[j] - mx); sum += out[j] }
                for j in 0..<classes { out[j] /= sum }
            }
        }
    }

    public func sgdUpdate(param: DeviceBuffer, grad: DeviceBuffer, velocity: DeviceBuffer?, count: Int, _ c: SGDConfig) {
        let p = cpu(param), g = cpu(grad)
        guard let velocity else {
            map(count) { i in p[i] -= c.lr * (g[i] + c.weightDecay * p[i]) }
            return
        }
        let v = cpu(velocity), lr = c.lr, mu = c.momentum, wd = c.weightDecay, nesterov = c.nesterov
        parallelChunks(count, threads: threads, grain: 65536) { r in
            for i in r {
                let gi = g[i] + wd * p[i]
                let vi = mu * v[i] + gi
                v[i] = vi
                p[i] -= lr * (nesterov ? gi + mu * vi : vi)
            }
        }
    }

    public func adamUpdate(param: DeviceBuffer, grad: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, count: Int, step: Int, _ c: AdamConfig) {
        let p = cpu(param), g = cpu(grad), mp = cpu(m), vp = cpu(v)
        let c1 = 1 - powf(c.beta1, Float(step)), c2 = 1 - powf(c.beta2, Float(step))
        let b1 = c.beta1, b2 = c.beta2, lr = c.lr, eps = c.epsilon, wd = c.weightDecay
        // Explicit SIMD: a scalar sqrt keeps its errno path (a libm call) and the loop scalar.
        typealias V = SIMD8<Float>
        parallelChunks(count, threads: threads, grain: 65536) { r in
            var i = r.lowerBound
            let load = { (q: UnsafeMutablePointer<Float>, i: Int) -> V in UnsafeRawPointer(q + i).loadUnaligned(as: V.self) }
            let store = { (v: V, q: UnsafeMutablePointer<Float>, i: Int) in UnsafeMutableRawPointer(q + i).storeBytes(of: v, as: V.self) }
            while i + 8 <= r.upperBound {
                let pi = load(p, i), gi = load(g, i) + wd * pi
                let mi = b1 * load(mp, i) + (1 - b1) * gi
                let vi = b2 * load(vp, i) + (1 - b2) * gi * gi
                store(mi, mp, i); store(vi, vp, i)
                store(pi - lr * (mi / c1) / ((vi / c2).squareRoot() + eps), p, i)
                i += 8
            }
            while i < r.upperBound {
                let gi = g[i] + wd * p[i]
                let mi = b1 * mp[i] + (1 - b1) * gi
                let vi = b2 * vp[i] + (1 - b2) * gi * gi
                mp[i] = mi; vp[i] = vi
                p[i] -= lr * (mi / c1) / ((vi / c2).squareRoot() + eps)
                i += 1
            }
        }
    }

    public func rmspropUpdate(param: DeviceBuffer, grad: DeviceBuffer, meanSquare: DeviceBuffer, count: Int, _ c: RMSpropConfig) {
        let p = cpu(param), g = cpu(grad), s = cpu(meanSquare)
        map(count) { i in
            let gi = g[i] + c.weightDecay * p[i]
            s[i] = c.rho * s[i] + (1 - c.rho) * gi * gi
            p[i] -= c.lr * gi / (s[i].squareRoot() + c.epsilon)
        }
    }
}

import Dispatch
import Foundation
import VGGTLTensors

/// Layer normalisation over the channels of each pixel (ConvNeXt's LayerNormalization in NHWC):
/// rows are independent, split across threads; the gamma and beta gradients are column sums
/// with per-thread partials (float within 64 rows, double across them).
extension CPUDevice {
    public func layerNorm(_ xb: DeviceBuffer, _ yb: DeviceBuffer, rows: Int, channels: Int, gamma: DeviceBuffer, beta: DeviceBuffer,
                          epsilon: Float, mean mb: DeviceBuffer, invStd sb: DeviceBuffer) {
        let x = cpu(xb), y = cpu(yb), ga = cpu(gamma), be = cpu(beta), mp = cpu(mb), sp = cpu(sb), c = channels
        parallelChunks(rows, threads: threads, grain: max(1, 16384 / max(c, 1))) { range in
            for r in range {
                let xr = x + r * c, yr = y + r * c
                var sum: Float = 0
                for j in 0..<c { sum += xr[j] }
                let m = sum / Float(c)
                var sq: Float = 0
                for j in 0..<c { let d = xr[j] - m; sq += d * d }
                let inv = 1 / (sq / Float(c) + epsilon).squareRoot()
                mp[r] = m; sp[r] = inv
                for j in 0..<c { yr[j] = (xr[j] - m) * inv * ga[j] + be[j] }
            }
        }
    }

    public func layerNormBackward(_ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dxb: DeviceBuffer, rows: Int, channels: Int,
                                  mean mb: DeviceBuffer, invStd sb: DeviceBuffer, gamma: DeviceBuffer,
                                  dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        let x = cpu(xb), dy = cpu(dyb), dx = cpu(dxb), ga = cpu(gamma), mp = cpu(mb), sp = cpu(sb), c = channels
        let chunks = min(threads, max(1, rows * c / 65536))
        var partial = [Double](repeating: 0, count: chunks * 2 * c)
        partial.withUnsafeMutableBufferPointer { acc in
            let accp = acc.baseAddress!
            DispatchQueue.concurrentPerform(iterations: chunks) { t in
                let total = accp + t * 2 * c
                let block = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c)
                defer { block.deallocate() }
                let blockG = block, blockB = block + c
                var r = rows * t / chunks
                let end = rows * (t + 1) / chunks
                while r < end {
                    block.initialize(repeating: 0, count: 2 * c)
                    for row in r..<min(r + 64, end) {
                        let xr = x + row * c, dyr = dy + row * c, dxr = dx + row * c
                        let m = mp[row], inv = sp[row]
                        // dx = inv * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
                        var sumG: Float = 0, sumGX: Float = 0
                        for j in 0..<c {
                            let xhat = (xr[j] - m) * inv, gj = dyr[j] * ga[j]
                            sumG += gj; sumGX += gj * xhat
                            blockG[j] += dyr[j] * xhat; blockB[j] += dyr[j]
                        }
                        let meanG = sumG / Float(c), meanGX = sumGX / Float(c)
                        for j in 0..<c {
                            let xhat = (xr[j] - m) * inv
                            dxr[j] = inv * (dyr[j] * ga[j] - meanG - xhat * meanGX)
                        }
                    }
                    for j in 0..<(2 * c) { total[j] += Double(block[j]) }
                    r += 64
                }
            }
        }
        let dg = cpu(dgamma), db = cpu(dbeta)
        for j in 0..<c {
            var sg = 0.0, sb = 0.0
            for t in 0..<chunks { sg += partial[t * 2 * c + j]; sb += partial[t * 2 * c + c + j] }
            dg[j] = Float(sg); db[j] = Float(sb)
        }
    }

    public func channelScale(_ xb: DeviceBuffer, _ sb: DeviceBuffer, _ yb: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let x = cpu(xb), s = cpu(sb), y = cpu(yb), c = channels
        parallelChunks(batch * pixels, threads: threads, grain: max(1, 65536 / max(c, 1))) { range in
            for row in range {
                let xr = x + row * c, yr = y + row * c, sr = s + (row / pixels) * c
                for j in 0..<c { yr[j] = xr[j] * sr[j] }
            }
        }
    }

    /// Per image, its pixels split across threads when there are fewer images than threads.
    public func channelScaleGradient(_ xb: DeviceBuffer, _ dyb: DeviceBuffer, _ dsb: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let x = cpu(xb), dy = cpu(dyb), ds = cpu(dsb), c = channels
        let perImage = max(1, min((threads + batch - 1) / batch, pixels * c / 16384))
        var partial = [Double](repeating: 0, count: batch * perImage * c)
        partial.withUnsafeMutableBufferPointer { acc in
            let accp = acc.baseAddress!
            DispatchQueue.concurrentPerform(iterations: batch * perImage) { task in
                let n = task / perImage, part = task % perImage
                let total = accp + task * c
                let block = UnsafeMutablePointer<Float>.allocate(capacity: c)
                defer { block.deallocate() }
                var p = pixels * part / perImage
                let end = pixels * (part + 1) / perImage
                while p < end {
                    block.initialize(repeating: 0, count: c)
                    for q in p..<min(p + 64, end) {
                        let xr = x + (n * pixels + q) * c, dyr = dy + (n * pixels + q) * c
                        for j in 0..<c { block[j] += xr[j] * dyr[j] }
                    }
                    for j in 0..<c { total[j] += Double(block[j]) }
                    p += 64
                }
            }
        }
        for n in 0..<batch {
            for j in 0..<c {
                var s = 0.0
                for part in 0..<perImage { s += partial[(n * perImage + part) * c + j] }
                ds[n * c + j] = Float(s)
            }
        }
    }
}

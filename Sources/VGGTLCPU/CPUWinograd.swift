import Dispatch
import Foundation
import VGGTLTensors

/// Winograd F(m x m, 3 x 3) on the CPU for 3x3 stride-1 'same' layers (the transforms are
/// Winograd's, WinogradTransforms.swift). The work per chunk of tiles is: input transform
/// (B^T d B, vectorised over channels) -> (m+2)^2 GEMMs (tiles x C) * (C x K) -> output
/// transform (A^T M A) with bias and ReLU fused. Each thread runs its own chunks with
/// single-threaded OpenBLAS calls, so a chunk's transforms and GEMMs stay in that core's L2 cache.
///
/// The backward-data pass is the same convolution with the kernel flipped and its channel
/// axes swapped (pad 1 is its own adjoint for 3x3 stride 1). A frozen layer's transformed
/// kernel is kept across calls.
struct CPUWinograd: ConvolutionAlgorithm {
    /// Output tile size: 2 or 4.
    let m: Int
    var variant: Winograd.Variant { Winograd.variant(m: m) }

    /// Whether a geometry is a 3x3 stride-1 convolution whose output has the input's size.
    static func applies(_ g: WindowGeometry) -> Bool {
        g.kH == 3 && g.kW == 3 && g.strideH == 1 && g.strideW == 1 && g.padTop == 1 && g.padLeft == 1
            && g.outH == g.inH && g.outW == g.inW && g.inC >= 8 && g.outC >= 8
    }

    func supports(_ pass: ConvPass, _ c: CPUConvContext) -> Bool { Self.applies(c.geometry) }
    func name(_ pass: ConvPass, _ c: CPUConvContext) -> String { Winograd.name(m) }

    func workspace(_ pass: ConvPass, _ c: CPUConvContext) -> Int {
        switch pass {
        case .forward: return Self.workspaceFloats(variant, c.geometry, flip: false, keptKernel: false, device: c.device)
        case .backwardData: return Self.workspaceFloats(variant, c.geometry, flip: true, keptKernel: false, device: c.device)
        case .backwardFilter: return Self.filterWorkspaceFloats(variant, c.geometry, device: c.device)
        }
    }

    func forward(_ c: CPUConvContext, x: Tensor, w: Tensor, bias: Tensor?, relu: Bool, y: Tensor, kernelIsConstant: Bool) throws {
        try run(c, x: x.buffer, w: w, bias: bias?.buffer, relu: relu, y: y.buffer, flip: false, constant: kernelIsConstant)
    }

    func backwardData(_ c: CPUConvContext, dy: Tensor, w: Tensor, dx: Tensor, kernelIsConstant: Bool) throws {
        try run(c, x: dy.buffer, w: w, bias: nil, relu: false, y: dx.buffer, flip: true, constant: kernelIsConstant)
    }

    func backwardFilter(_ c: CPUConvContext, x: Tensor, dy: Tensor, dw: Tensor, db: Tensor?) throws {
        try Self.filterGradient(variant, device: c.device, x: x.buffer, dy: dy.buffer, dw: dw.buffer, c.geometry)
        biasGradient(c.device, c.geometry, dy: dy, db: db)
    }

    /// Forward (flip = false: x is the input, K = outC) or backward-data (flip = true: x is dy,
    /// the result is dx) of a 3x3 stride-1 'same' convolution. With `constant`, the transformed
    /// kernel comes from (or is computed into) the plan's kept kernels; else it is computed into
    /// the workspace.
    private func run(_ c: CPUConvContext, x: DeviceBuffer, w: Tensor, bias: DeviceBuffer?, relu: Bool, y: DeviceBuffer,
                     flip: Bool, constant: Bool) throws {
        let v = variant, g = c.geometry, device = c.device
        let ci = flip ? g.outC : g.inC, k = flip ? g.inC : g.outC
        // Layout: [flip scratch][per-thread tiles][U unless kept].
        let base = try device.workspacePointer(Self.workspaceFloats(v, g, flip: flip, keptKernel: constant, device: device))
        let tiles = base + (flip ? Self.flipFloats(c: ci, k: k) : 0)
        let transform = { (u: UnsafeMutablePointer<Float>) in
            Self.transformKernel(v, cpu(w.buffer), c: g.inC, k: g.outC, flip: flip, into: u, scratch: base, threads: device.threads)
        }
        let u: UnsafeMutablePointer<Float>
        if let keptU = try c.kept.transform(flip ? .backwardData : .forward, by: self, of: w, constant: constant,
                                            floats: Self.kernelFloats(v, c: ci, k: k), on: device, fill: { transform(cpu($0)) }) {
            u = cpu(keptU)
        } else {
            u = tiles + device.threads * Self.scratchPerThread(v, c: ci, k: k, device.options)
            transform(u)
        }
        Self.convolve(v, x: cpu(x), u: u, bias: bias.map { UnsafePointer(cpu($0)) }, relu: relu, y: cpu(y),
                      batch: g.batch, h: g.inH, w: g.inW, c: ci, k: k, scratch: tiles, device: device)
    }
}

extension CPUWinograd {
    /// Tiles a thread transforms and multiplies at once: its transformed input and products
    /// (alpha^2 x tiles x (C + K) floats) about fill a core's L2 cache.
    static func chunkTiles(_ v: Winograd.Variant, c: Int, k: Int, _ o: CPUDevice.Options) -> Int {
        // At least 128 tiles per GEMM (the default minimum): OpenBLAS packs U[xi] (C x K) on every call.
        let budget = o.winogradChunkFloats / (v.alpha * v.alpha * (c + k))
        return max(o.winogradMinChunk, min(1024, budget))
    }

    /// Splits `tiles` into chunks of at most `most` tiles, as many chunks as a multiple of the
    /// thread count so that every thread gets the same work.
    static func balancedChunks(tiles: Int, most: Int, threads: Int) -> (chunk: Int, chunks: Int) {
        var chunks = (tiles + most - 1) / most
        if chunks > 1 { chunks = (chunks + threads - 1) / threads * threads }
        let chunk = (tiles + chunks - 1) / chunks
        return (chunk, (tiles + chunk - 1) / chunk)
    }

    /// out[0..<n] = sum of coef * src[idx][0..<n] over the row's terms (one pass, vectorised).
    @inline(__always)
    static func combine(_ out: UnsafeMutablePointer<Float>, _ n: Int, _ row: [(Int, Float)],
                        _ src: UnsafeMutablePointer<UnsafePointer<Float>>, _ stride: Int) {
        switch row.count {
        case 1:
            let (i0, a) = row[0]; let p0 = src[i0 * stride]
            for c in 0..<n { out[c] = a * p0[c] }
        case 2:
            let (i0, a) = row[0], (i1, b) = row[1]
            let p0 = src[i0 * stride], p1 = src[i1 * stride]
            for c in 0..<n { out[c] = a * p0[c] + b * p1[c] }
        case 3:
            let (i0, a) = row[0], (i1, b) = row[1], (i2, d) = row[2]
            let p0 = src[i0 * stride], p1 = src[i1 * stride], p2 = src[i2 * stride]
            for c in 0..<n { out[c] = a * p0[c] + b * p1[c] + d * p2[c] }
        case 4:
            let (i0, a) = row[0], (i1, b) = row[1], (i2, d) = row[2], (i3, e) = row[3]
            let p0 = src[i0 * stride], p1 = src[i1 * stride], p2 = src[i2 * stride], p3 = src[i3 * stride]
            for c in 0..<n { out[c] = a * p0[c] + b * p1[c] + d * p2[c] + e * p3[c] }
        default:
            out.update(repeating: 0, count: n)
            for (i, a) in row { let p = src[i * stride]; for c in 0..<n { out[c] += a * p[c] } }
        }
    }

    /// U[xi][c][k] = (G g G^T)[xi] for every (c, k), from a kernel laid out as 9 blocks of
    /// (rows x cols) with element (c, k) at c * ldw + k; `flip` reads tap 8 - t and swaps the
    /// channel axes (rows = K, cols = C of the original HWIO kernel).
    static func transformKernel(_ v: Winograd.Variant, _ w: UnsafePointer<Float>, c: Int, k: Int, flip: Bool,
                                into u: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Int) {
        let rows = flip ? k : c, cols = flip ? c : k
        let src: UnsafePointer<Float>
        if flip {
            // scratch[t][k][c] = w[8 - t][c][k]
            let s = scratch
            parallelChunks(9 * k, threads: threads, grain: 16) { range in
                for q in range {
                    let t = q / k, kk = q % k
                    let from = w + (8 - t) * c * k + kk, to = s + (t * k + kk) * c
                    for cc in 0..<c { to[cc] = from[cc * k] }
                }
            }
            src = UnsafePointer(scratch)
        } else {
            src = w
        }
        let a = v.alpha, plane = rows * cols
        let block = 512
        parallelChunks((plane + block - 1) / block, threads: threads, grain: 1) { blocks in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: a * 3 * block) { tmpBuf in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 9 + a * 3) { ptrBuf in
                    let tmp = tmpBuf.baseAddress!, ptrs = ptrBuf.baseAddress!
                    for bi in blocks {
                        let lo = bi * block, n = min(block, plane - lo)
                        // tmp[x][s] = sum_r G[x][r] w[r][s]
                        for t in 0..<9 { ptrs[t] = src + t * plane + lo }
                        for x in 0..<a {
                            for s in 0..<3 {
                                combine(tmp + (x * 3 + s) * block, n, v.g.rows[x], ptrs + s, 3)
                            }
                        }
                        // U[x][y] = sum_s G[y][s] tmp[x][s]
                        for q in 0..<(a * 3) { ptrs[9 + q] = UnsafePointer(tmp + q * block) }
                        for x in 0..<a {
                            for y in 0..<a {
                                combine(u + (x * a + y) * plane + lo, n, v.g.rows[y], ptrs + 9 + x * 3, 1)
                            }
                        }
                    }
                }
            }
        }
    }

    /// y = conv3x3_same(x, kernel) (+ bias, then ReLU) with the kernel given transformed (U).
    /// x: (batch, H, W, C); y: (batch, H, W, K).
    static func convolve(_ v: Winograd.Variant, x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                         relu: Bool, y: UnsafeMutablePointer<Float>, batch: Int, h: Int, w: Int, c: Int, k: Int,
                         scratch: UnsafeMutablePointer<Float>, device: CPUDevice) {
        let m = v.m, a = v.alpha, aa = a * a
        let th = (h + m - 1) / m, tw = (w + m - 1) / m
        let perImage = th * tw, tiles = batch * perImage
        let (chunk, chunks) = balancedChunks(tiles: tiles, most: chunkTiles(v, c: c, k: k, device.options), threads: device.threads)
        let workers = min(device.threads, chunks)
        let perThread = scratchPerThread(v, c: c, k: k, device.options)
        let blas = device.blas
        if workers > 1 { blas.setThreadCount(1) }
        defer { if workers > 1 { blas.setThreadCount(device.threads) } }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let base = scratch + worker * perThread
            let vbuf = base, mbuf = vbuf + aa * chunk * c
            let tmp = mbuf + aa * chunk * k                // aa * max(c, k)
            let zeros = tmp + aa * max(c, k)               // max(c, k)
            let maxCK = max(c, k)
            zeros.update(repeating: 0, count: maxCK)
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * aa) { ptrBuf in
                let inPtrs = ptrBuf.baseAddress!, tmpPtrs = inPtrs + aa
                for q in 0..<aa { tmpPtrs[q] = UnsafePointer(tmp + q * maxCK) }
                var ci = worker
                while ci < chunks {
                    let t0 = ci * chunk, rows = min(chunk, tiles - t0)
                    inputTransform(v, x: x, tiles: t0..<(t0 + rows), chunk: chunk, h: h, w: w, c: c,
                                   into: vbuf, tmp: tmp, ld: maxCK, zeros: zeros, ptrs: inPtrs, tmpPtrs: tmpPtrs)
                    // The alpha^2 products: M[xi] (rows x K) = V[xi] (rows x C) * U[xi] (C x K).
                    for xi in 0..<aa {
                        blas.sgemm(101, 111, 111, Int32(rows), Int32(k), Int32(c), 1,
                                   vbuf + xi * chunk * c, Int32(c), u + xi * c * k, Int32(k), 0,
                                   mbuf + xi * chunk * k, Int32(k))
                    }
                    // Output transform: Y = A^T M A, + bias, ReLU, stored where inside the image.
                    for lt in 0..<rows {
                        let t = t0 + lt, n = t / perImage, r = t % perImage
                        let oh0 = (r / tw) * m, ow0 = (r % tw) * m
                        for q in 0..<aa { inPtrs[q] = UnsafePointer(mbuf + (q * chunk + lt) * k) }
                        // tmp[i][j] (m x alpha) = sum_a A^T[i][a] M[a][j]
                        for i in 0..<m { for j in 0..<a { combine(tmp + (i * a + j) * maxCK, k, v.at.rows[i], inPtrs + j, a) } }
                        for i in 0..<m {
                            let oh = oh0 + i
                            guard oh < h else { break }
                            for j in 0..<m {
                                let ow = ow0 + j
                                guard ow < w else { break }
                                let out = y + ((n * h + oh) * w + ow) * k
                                combine(out, k, v.at.rows[j], tmpPtrs + i * a, 1)
                                if let bias {
                                    if relu { for q in 0..<k { out[q] = max(out[q] + bias[q], 0) } }
                                    else { for q in 0..<k { out[q] += bias[q] } }
                                } else if relu {
                                    for q in 0..<k { out[q] = max(out[q], 0) }
                                }
                            }
                        }
                    }
                    ci += workers
                }
            }
        }
    }

    /// V[xi][t - tiles.lowerBound][:] = (B^T d B)[xi] for the input tiles `tiles` of x (batch, h, w, c).
    /// `tmp` holds alpha^2 vectors of stride ld; ptrs/tmpPtrs have alpha^2 entries each, tmpPtrs
    /// pointing at tmp's vectors.
    @inline(__always)
    static func inputTransform(_ v: Winograd.Variant, x: UnsafePointer<Float>, tiles: Range<Int>, chunk: Int, h: Int, w: Int, c: Int,
                               into vbuf: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>, ld: Int,
                               zeros: UnsafeMutablePointer<Float>, ptrs inPtrs: UnsafeMutablePointer<UnsafePointer<Float>>,
                               tmpPtrs: UnsafeMutablePointer<UnsafePointer<Float>>) {
        let m = v.m, a = v.alpha
        let th = (h + m - 1) / m, tw = (w + m - 1) / m, perImage = th * tw
        for t in tiles {
            let lt = t - tiles.lowerBound, n = t / perImage, r = t % perImage
            let h0 = (r / tw) * m - 1, w0 = (r % tw) * m - 1
            for i in 0..<a {
                let ih = h0 + i
                for j in 0..<a {
                    let iw = w0 + j
                    inPtrs[i * a + j] = (ih >= 0 && ih < h && iw >= 0 && iw < w)
                        ? x + ((n * h + ih) * w + iw) * c : UnsafePointer(zeros)
                }
            }
            // rows first: tmp[i'][j] = sum_i B^T[i'][i] d[i][j]
            for i2 in 0..<a { for j in 0..<a { combine(tmp + (i2 * a + j) * ld, c, v.bt.rows[i2], inPtrs + j, a) } }
            // then columns: V[i'][j'] = sum_j B^T[j'][j] tmp[i'][j]
            for i2 in 0..<a {
                for j2 in 0..<a {
                    combine(vbuf + ((i2 * a + j2) * chunk + lt) * c, c, v.bt.rows[j2], tmpPtrs + i2 * a, 1)
                }
            }
        }
    }

    static func scratchPerThread(_ v: Winograd.Variant, c: Int, k: Int, _ o: CPUDevice.Options) -> Int {
        let aa = v.alpha * v.alpha, chunk = chunkTiles(v, c: c, k: k, o)
        // V, M, transform temporaries, a zero vector; rounded to 64 bytes.
        return (aa * chunk * (c + k) + (aa + 1) * max(c, k) + 15) & ~15
    }

    /// Floats of a transformed kernel U (alpha^2 x C x K), rounded to 64 bytes.
    static func kernelFloats(_ v: Winograd.Variant, c: Int, k: Int) -> Int { (v.alpha * v.alpha * c * k + 15) & ~15 }

    /// Floats of the flipped kernel that backward-data transforms from.
    static func flipFloats(c: Int, k: Int) -> Int { (9 * c * k + 15) & ~15 }

    /// Workspace of forward (flip = false) or backward-data (flip = true) of geometry g:
    /// the flip scratch, per-thread tiles, and U when the plan does not keep it.
    static func workspaceFloats(_ v: Winograd.Variant, _ g: WindowGeometry, flip: Bool, keptKernel: Bool, device: CPUDevice) -> Int {
        let c = flip ? g.outC : g.inC, k = flip ? g.inC : g.outC
        return (flip ? flipFloats(c: c, k: k) : 0) + device.threads * scratchPerThread(v, c: c, k: k, device.options)
            + (keptKernel ? 0 : kernelFloats(v, c: c, k: k))
    }
}

extension CPUWinograd {
    /// Per-thread floats of the filter-gradient pass: V, dM, transform temporaries, zeros, dU.
    static func filterScratchPerThread(_ v: Winograd.Variant, c: Int, k: Int, _ o: CPUDevice.Options) -> Int {
        let aa = v.alpha * v.alpha, chunk = chunkTiles(v, c: c, k: k, o)
        return (aa * chunk * (c + k) + (aa + 1) * max(c, k) + aa * c * k + 15) & ~15
    }

    /// Chunks of tiles of the filter-gradient pass and how many threads share them.
    static func filterChunks(_ v: Winograd.Variant, _ g: WindowGeometry, device: CPUDevice) -> (chunk: Int, chunks: Int, workers: Int) {
        let tiles = g.batch * ((g.inH + v.m - 1) / v.m) * ((g.inW + v.m - 1) / v.m)
        let (chunk, chunks) = balancedChunks(tiles: tiles, most: chunkTiles(v, c: g.inC, k: g.outC, device.options),
                                             threads: device.threads)
        return (chunk, chunks, min(device.threads, chunks))
    }

    /// Workspace of the filter-gradient pass: each working thread's tiles and dU.
    static func filterWorkspaceFloats(_ v: Winograd.Variant, _ g: WindowGeometry, device: CPUDevice) -> Int {
        filterChunks(v, g, device: device).workers * filterScratchPerThread(v, c: g.inC, k: g.outC, device.options)
    }

    /// dw (HWIO, overwritten) of a 3x3 stride-1 'same' convolution: for each tile the input
    /// transform V = B^T d B and the output-gradient transform dM = A dY A^T, then
    /// dU[xi] += V[xi]^T dM[xi] (GEMMs over the tiles), and dw = G^T dU G.
    static func filterGradient(_ v: Winograd.Variant, device: CPUDevice, x xb: DeviceBuffer, dy dyb: DeviceBuffer,
                               dw dwb: DeviceBuffer, _ g: WindowGeometry) throws {
        let c = g.inC, k = g.outC, h = g.inH, w = g.inW
        let m = v.m, a = v.alpha, aa = a * a, maxCK = max(c, k)
        let th = (h + m - 1) / m, tw = (w + m - 1) / m
        let perImage = th * tw, tiles = g.batch * perImage
        let (chunk, chunks, workers) = filterChunks(v, g, device: device)
        let perThread = filterScratchPerThread(v, c: c, k: k, device.options)
        let scratch = try device.workspacePointer(workers * perThread)
        let x = UnsafePointer(cpu(xb)), dy = UnsafePointer(cpu(dyb)), dw = cpu(dwb)
        let blas = device.blas
        let plane = c * k
        func dU(_ worker: Int) -> UnsafeMutablePointer<Float> {
            scratch + worker * perThread + aa * chunk * (c + k) + (aa + 1) * maxCK
        }
        if workers > 1 { blas.setThreadCount(1) }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let vbuf = scratch + worker * perThread, mbuf = vbuf + aa * chunk * c
            let tmp = mbuf + aa * chunk * k, zeros = tmp + aa * maxCK
            let du = dU(worker)
            zeros.update(repeating: 0, count: maxCK)
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * aa) { ptrBuf in
                let ptrs = ptrBuf.baseAddress!, tmpPtrs = ptrs + aa
                for q in 0..<aa { tmpPtrs[q] = UnsafePointer(tmp + q * maxCK) }
                var ci = worker, first = true
                while ci < chunks {
                    let t0 = ci * chunk, rows = min(chunk, tiles - t0)
                    inputTransform(v, x: x, tiles: t0..<(t0 + rows), chunk: chunk, h: h, w: w, c: c,
                                   into: vbuf, tmp: tmp, ld: maxCK, zeros: zeros, ptrs: ptrs, tmpPtrs: tmpPtrs)
                    // dM[xi][t] = (A dY A^T)[xi], dY the m x m output-gradient tile (zero outside the image).
                    for lt in 0..<rows {
                        let t = t0 + lt, n = t / perImage, r = t % perImage
                        let oh0 = (r / tw) * m, ow0 = (r % tw) * m
                        for i in 0..<m {
                            for j in 0..<m {
                                let oh = oh0 + i, ow = ow0 + j
                                ptrs[i * m + j] = (oh < h && ow < w) ? dy + ((n * h + oh) * w + ow) * k : UnsafePointer(zeros)
                            }
                        }
                        // tmp[a'][j] (alpha x m) = sum_i A[a'][i] dY[i][j]
                        for a2 in 0..<a { for j in 0..<m { combine(tmp + (a2 * m + j) * maxCK, k, v.a.rows[a2], ptrs + j, m) } }
                        // dM[a'][b'] = sum_j A[b'][j] tmp[a'][j]
                        for a2 in 0..<a {
                            for b2 in 0..<a {
                                combine(mbuf + ((a2 * a + b2) * chunk + lt) * k, k, v.a.rows[b2], tmpPtrs + a2 * m, 1)
                            }
                        }
                    }
                    for xi in 0..<aa {
                        blas.sgemm(101, 112, 111, Int32(c), Int32(k), Int32(rows), 1,
                                   vbuf + xi * chunk * c, Int32(c), mbuf + xi * chunk * k, Int32(k), first ? 0 : 1,
                                   du + xi * plane, Int32(k))
                    }
                    first = false
                    ci += workers
                }
            }
        }
        if workers > 1 { blas.setThreadCount(device.threads) }
        // Sum the threads' dU into worker 0's, then dw[r][s] = sum_{a,b} G[a][r] G[b][s] dU[a][b].
        let total = dU(0)
        let block = 512
        parallelChunks((plane + block - 1) / block, threads: device.threads, grain: 1) { blocks in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * a * block) { tmpBuf in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: aa + 3 * a) { ptrBuf in
                    let tmp = tmpBuf.baseAddress!, ptrs = ptrBuf.baseAddress!
                    for bi in blocks {
                        let lo = bi * block, n = min(block, plane - lo)
                        for wk in 1..<max(workers, 1) {
                            let other = dU(wk)
                            for xi in 0..<aa {
                                let d = total + xi * plane + lo, o = other + xi * plane + lo
                                for q in 0..<n { d[q] += o[q] }
                            }
                        }
                        for xi in 0..<aa { ptrs[xi] = UnsafePointer(total + xi * plane + lo) }
                        // tmp[r][b] = sum_a G^T[r][a] dU[a][b]
                        for r in 0..<3 { for b in 0..<a { combine(tmp + (r * a + b) * block, n, v.gt.rows[r], ptrs + b, a) } }
                        for q in 0..<(3 * a) { ptrs[aa + q] = UnsafePointer(tmp + q * block) }
                        // dw[r][s] = sum_b G^T[s][b] tmp[r][b]
                        for r in 0..<3 {
                            for s in 0..<3 {
                                combine(dw + (r * 3 + s) * plane + lo, n, v.gt.rows[s], ptrs + aa + r * a, 1)
                            }
                        }
                    }
                }
            }
        }
    }
}

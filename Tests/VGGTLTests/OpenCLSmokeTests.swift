import Foundation
import XCTest
import VGGTL

/// Smoke tests of the OpenCL backend: a handful of primitives on OpenCLDevice(index: 0) against
/// CPUDevice, within float tolerance. (The full parity suite lives in ParityTests.)
final class OpenCLSmokeTests: VGGTLTestCase {
    /// One test at a time uses them (see cpuDevice).
    nonisolated(unsafe) private static let devices: (cl: OpenCLDevice, cpu: CPUDevice)? = {
        guard let cl = try? OpenCLDevice(index: 0), let cpu = try? CPUDevice() else { return nil }
        return (cl, cpu)
    }()

    private var cl: OpenCLDevice!
    private var cpu: CPUDevice!

    override func setUpWithError() throws {
        guard let d = Self.devices else {
            throw XCTSkip("no OpenCL device (install pocl-opencl-icd)")
        }
        cl = d.cl
        cpu = d.cpu
    }

    // MARK: helpers

    /// Deterministic values in [-1, 1).
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return Float(s >> 40) / Float(1 << 23) - 1
        }
    }

    /// The same values as a buffer on each device: (OpenCL, CPU).
    private func pair(_ v: [Float]) throws -> (DeviceBuffer, DeviceBuffer) {
        (try upload(v, to: cl), try upload(v, to: cpu))
    }

    private func upload(_ v: [Float], to device: Device) throws -> DeviceBuffer {
        let b = try device.allocate(v.count, what: "test")
        v.withUnsafeBufferPointer { device.write($0, to: b, offset: 0) }
        return b
    }

    private func download(_ b: DeviceBuffer, _ device: Device, _ count: Int? = nil) -> [Float] {
        var out = [Float](repeating: .nan, count: count ?? b.count)
        out.withUnsafeMutableBufferPointer { device.read(b, offset: 0, into: $0) }
        return out
    }

    /// Asserts |a - b| <= rel * max(|a|, |b|) + abs elementwise, reporting the worst element.
    private func assertClose(_ pair: (DeviceBuffer, DeviceBuffer), count: Int? = nil, rel: Float = 1e-4,
                             abs tolerance: Float = 1e-5, _ what: String, file: StaticString = #filePath,
                             line: UInt = #line) {
        let a = download(pair.0, cl, count), b = download(pair.1, cpu, count)
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var worst = -1, worstExcess: Float = 0
        for i in 0..<min(a.count, b.count) {
            let excess = Swift.abs(a[i] - b[i]) - (rel * max(Swift.abs(a[i]), Swift.abs(b[i])) + tolerance)
            if !(excess <= worstExcess) { worst = i; worstExcess = excess.isNaN ? .infinity : excess }
        }
        if worst >= 0 {
            XCTFail("\(what): element \(worst): opencl \(a[worst]) vs cpu \(b[worst])", file: file, line: line)
        }
    }

    // MARK: tests

    func testEnumerateAndName() throws {
        let infos = OpenCLDevice.enumerate()
        XCTAssertFalse(infos.isEmpty)
        XCTAssertEqual(infos.map(\.index), Array(infos.indices))
        XCTAssertEqual(cl.info, infos[0])
        XCTAssertTrue(cl.name.hasPrefix("opencl:0 ("), cl.name)
        XCTAssertGreaterThan(cl.info.maxAllocationBytes, 0)
        XCTAssertEqual(cl.kind, .opencl)
        XCTAssertThrowsError(try OpenCLDevice(index: infos.count)) { error in
            XCTAssertEqual(error as? VGGTLError, .deviceIndexOutOfRange(index: infos.count, count: infos.count))
        }
        XCTAssertThrowsError(try cl.allocate(cl.info.maxAllocationBytes / 4 + 1, what: "huge")) { error in
            guard case .allocationTooLarge = error as? VGGTLError else { return XCTFail("\(error)") }
        }
    }

    func testGemm() throws {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let m = 37, n = 29, k = 53, off = 3, lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 4
            let a = try pair(values(off + (ta ? k : m) * lda, seed: 1))
            let b = try pair(values(off + (tb ? n : k) * ldb, seed: 2))
            let c = try pair(values(off + m * ldc, seed: 3))
            for (d, i) in [(cl as Device, 0), (cpu as Device, 1)] {
                d.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75,
                       a: i == 0 ? a.0 : a.1, aOffset: off, lda: lda, b: i == 0 ? b.0 : b.1, bOffset: off, ldb: ldb,
                       beta: 0.5, c: i == 0 ? c.0 : c.1, cOffset: off, ldc: ldc)
            }
            assertClose(c, "gemm transA \(ta) transB \(tb)")
        }
    }

    func testIm2colAndCol2imTiles() throws {
        let g = try WindowGeometry(batch: 2, inH: 9, inW: 7, inC: 5, kernel: (3, 3), stride: (2, 2), padding: .same)
        let x = try pair(values(g.inCount, seed: 4))
        // Two uneven tiles of output rows, as the convolution layer tiles large inputs.
        for (row0, rows) in [(0, 11), (11, g.outPixels - 11)] {
            let col = (try cl.allocate(rows * g.patchSize, what: "col"), try cpu.allocate(rows * g.patchSize, what: "col"))
            cl.im2col(x.0, g, row0: row0, rows: rows, col: col.0)
            cpu.im2col(x.1, g, row0: row0, rows: rows, col: col.1)
            assertClose(col, "im2col rows \(row0)..<\(row0 + rows)")
        }
        let dx = try pair(values(g.inCount, seed: 5))
        for (row0, rows) in [(0, 13), (13, g.outPixels - 13)] {
            let dcol = try pair(values(rows * g.patchSize, seed: UInt64(6 + row0)))
            cl.col2imAdd(dcol.0, g, row0: row0, rows: rows, dx: dx.0)
            cpu.col2imAdd(dcol.1, g, row0: row0, rows: rows, dx: dx.1)
        }
        assertClose(dx, "col2imAdd")
    }

    func testPooling() throws {
        // Small integers make ties, which must go to the first maximum on both devices.
        let g = try WindowGeometry(batch: 2, inH: 7, inW: 9, inC: 3, kernel: (3, 3), stride: (2, 2), padding: .same)
        let x = try pair(values(g.inCount, seed: 7).map { ($0 * 3).rounded() })
        let dy = try pair(values(g.outPixels * g.inC, seed: 8))
        let y = (try cl.allocate(g.outPixels * g.inC, what: "y"), try cpu.allocate(g.outPixels * g.inC, what: "y"))
        let dx = try pair(values(g.inCount, seed: 9))  // overwritten
        cl.maxPool(x.0, y.0, g); cpu.maxPool(x.1, y.1, g)
        assertClose(y, "maxPool")
        cl.maxPoolBackward(x.0, dy.0, dx.0, g); cpu.maxPoolBackward(x.1, dy.1, dx.1, g)
        assertClose(dx, rel: 0, abs: 0, "maxPoolBackward")
        cl.avgPool(x.0, y.0, g); cpu.avgPool(x.1, y.1, g)
        assertClose(y, "avgPool")
        cl.avgPoolBackward(dy.0, dx.0, g); cpu.avgPoolBackward(dy.1, dx.1, g)
        assertClose(dx, "avgPoolBackward")
    }

    func testBatchNormAndBiasGradient() throws {
        for (rows, channels) in [(300, 3), (37, 70), (5, 4096), (200_003, 2)] {
            let n = rows * channels
            let x = try pair(values(n, seed: 10).map { $0 * 3 + 2 })
            let dy = try pair(values(n, seed: 11))
            let gamma = try pair(values(channels, seed: 12).map { $0 + 1.5 })
            let beta = try pair(values(channels, seed: 13))
            let stats = try (0..<4).map { _ in try pair([Float](repeating: 0.5, count: channels)) }
            let (mean, variance, dgamma, dbeta) = (stats[0], stats[1], stats[2], stats[3])
            let y = try pair([Float](repeating: 0, count: n))
            let dx = try pair([Float](repeating: 0, count: n))
            let running = try (pair([Float](repeating: 0, count: channels)), pair([Float](repeating: 1, count: channels)))
            for (d, i) in [(cl as Device, 0), (cpu as Device, 1)] {
                func b(_ p: (DeviceBuffer, DeviceBuffer)) -> DeviceBuffer { i == 0 ? p.0 : p.1 }
                d.channelMeanVariance(b(x), rows: rows, channels: channels, mean: b(mean), variance: b(variance))
                d.batchNormApply(b(x), b(y), rows: rows, channels: channels, mean: b(mean), variance: b(variance),
                                 gamma: b(gamma), beta: b(beta), epsilon: 1e-3)
                d.batchNormUpdateRunning(runningMean: b(running.0), runningVariance: b(running.1), mean: b(mean),
                                         variance: b(variance), channels: channels, rows: rows, momentum: 0.99)
                d.batchNormBackward(b(x), b(dy), b(dx), rows: rows, channels: channels, mean: b(mean),
                                    variance: b(variance), gamma: b(gamma), epsilon: 1e-3,
                                    dgamma: b(dgamma), dbeta: b(dbeta))
            }
            let shape = "\(rows)x\(channels)"
            assertClose(mean, "mean \(shape)")
            assertClose(variance, "variance \(shape)")
            assertClose(y, "batchNormApply \(shape)")
            assertClose(running.0, "running mean \(shape)")
            assertClose(running.1, "running variance \(shape)")
            assertClose(dbeta, rel: 1e-4, abs: 1e-4, "dbeta \(shape)")
            assertClose(dgamma, rel: 1e-4, abs: 1e-4, "dgamma \(shape)")
            assertClose(dx, rel: 1e-3, abs: 1e-4, "batchNorm dx \(shape)")

            let db = try pair(values(channels, seed: 14))
            cl.biasGradient(dy.0, rows: rows, channels: channels, db: db.0, accumulate: true)
            cpu.biasGradient(dy.1, rows: rows, channels: channels, db: db.1, accumulate: true)
            assertClose(db, abs: 1e-4, "biasGradient \(shape)")
        }
    }

    func testLossesAndSoftmax() throws {
        let rows = 9, classes = 13
        let logits = try pair(values(rows * classes, seed: 15).map { $0 * 20 })
        let labels = try pair((0..<rows).map { Float(($0 * 7) % classes) })
        let loss = try pair([Float](repeating: 0, count: rows * classes))
        let grad = try pair([Float](repeating: 0, count: rows * classes))
        cl.softmaxCrossEntropy(logits.0, labels: labels.0, rows: rows, classes: classes, loss: loss.0, dlogits: grad.0, gradScale: 1 / 9)
        cpu.softmaxCrossEntropy(logits.1, labels: labels.1, rows: rows, classes: classes, loss: loss.1, dlogits: grad.1, gradScale: 1 / 9)
        assertClose(loss, count: rows, "softmaxCrossEntropy loss")
        assertClose(grad, "softmaxCrossEntropy dlogits")

        let targets = try pair(values(rows * classes, seed: 16).map { ($0 + 1) / 2 })
        cl.sigmoidBinaryCrossEntropy(logits.0, targets: targets.0, count: rows * classes, loss: loss.0, dlogits: grad.0, gradScale: 0.5)
        cpu.sigmoidBinaryCrossEntropy(logits.1, targets: targets.1, count: rows * classes, loss: loss.1, dlogits: grad.1, gradScale: 0.5)
        assertClose(loss, "sigmoidBinaryCrossEntropy loss")
        assertClose(grad, "sigmoidBinaryCrossEntropy dlogits")

        cl.softmax(logits.0, grad.0, rows: rows, classes: classes)
        cpu.softmax(logits.1, grad.1, rows: rows, classes: classes)
        assertClose(grad, "softmax")
    }

    func testOptimizersAndDropout() throws {
        let count = 1000
        let param = try pair(values(count, seed: 17))
        let grad = try pair(values(count, seed: 18))
        let m = try pair([Float](repeating: 0, count: count)), v = try pair([Float](repeating: 0, count: count))
        let velocity = try pair([Float](repeating: 0, count: count))
        let meanSquare = try pair([Float](repeating: 0, count: count))
        for step in 1...3 {
            let adam = AdamConfig(lr: 1e-3, weightDecay: 1e-4)
            cl.adamUpdate(param: param.0, grad: grad.0, m: m.0, v: v.0, count: count, step: step, adam)
            cpu.adamUpdate(param: param.1, grad: grad.1, m: m.1, v: v.1, count: count, step: step, adam)
            let sgd = SGDConfig(lr: 0.01, momentum: 0.9, nesterov: step == 2)
            cl.sgdUpdate(param: param.0, grad: grad.0, velocity: velocity.0, count: count, sgd)
            cpu.sgdUpdate(param: param.1, grad: grad.1, velocity: velocity.1, count: count, sgd)
            cl.rmspropUpdate(param: param.0, grad: grad.0, meanSquare: meanSquare.0, count: count, RMSpropConfig(lr: 1e-3))
            cpu.rmspropUpdate(param: param.1, grad: grad.1, meanSquare: meanSquare.1, count: count, RMSpropConfig(lr: 1e-3))
        }
        assertClose(param, "optimizer params")
        assertClose(v, "adam v")
        assertClose(velocity, "sgd velocity")
        assertClose(meanSquare, "rmsprop mean square")

        let y = try pair([Float](repeating: 0, count: count))
        cl.dropout(grad.0, y.0, count: count, rate: 0.5, seed: 1234)
        cpu.dropout(grad.1, y.1, count: count, rate: 0.5, seed: 1234)
        assertClose(y, rel: 0, abs: 0, "dropout")
    }

    /// A second device opened on the same cache directory loads every program from disk.
    func testKernelCacheRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let options = OpenCLDevice.Options(kernelCache: dir)
        let first = try OpenCLDevice(index: 0, options: options)
        XCTAssertEqual(first.kernelBuild.fromCache, 0)
        let second = try OpenCLDevice(index: 0, options: options)
        XCTAssertEqual(second.kernelBuild.fromCache, second.kernelBuild.programs)
        // The cached kernels work.
        let x = try upload([-1, 2, -3, 4], to: second)
        second.relu(x, x, count: 4)
        XCTAssertEqual(download(x, second), [0, 2, 0, 4])
    }
}

import Benchmark
import VGGTL

// GEMM at VGG16's shapes on every device, reported as a custom "GFLOP/s" metric (median
// over iterations) next to wall-clock time.
// (Shapes: im2col rows x Cout x patch for a batch-16 150x150 step, and fc1.)
let shapes: [(name: String, m: Int, n: Int, k: Int)] = [
    ("square2048", 2048, 2048, 2048),
    ("block1_conv2_tile", 29127, 64, 576),
    ("block3_conv2", 16 * 37 * 37, 256, 2304),
    ("block5_conv2", 16 * 9 * 9, 512, 4608),
    ("fc1_b16", 16, 256, 8192),
]

func devices() -> [(String, Device)] {
    var list: [(String, Device)] = []
    if let cpu = try? CPUDevice() { list.append(("cpu", cpu)) }
    for info in OpenCLDevice.enumerate() {
        if let d = try? OpenCLDevice(index: info.index) { list.append(("opencl\(info.index)", d)) }
    }
    return list
}

let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    for (deviceName, device) in devices() {
        for s in shapes {
            // PoCL runs at CPU speed: keep its runs to the smaller shapes.
            if device.kind == .opencl, device.name.contains("pthread"), s.m * s.n * s.k > 1 << 31 { continue }
            let flops = 2 * s.m * s.n * s.k
            guard let a = try? Tensor(zeros: [s.m * s.k], on: device), let b = try? Tensor(zeros: [s.k * s.n], on: device),
                  let c = try? Tensor(zeros: [s.m * s.n], on: device) else { continue }
            Benchmark("sgemm \(s.name) \(s.m)x\(s.n)x\(s.k) \(deviceName)",
                      configuration: .init(metrics: [.wallClock, gflops], scalingFactor: .one,
                                           maxDuration: .seconds(3), maxIterations: 50)) { benchmark in
                let clock = ContinuousClock()
                let start = clock.now
                benchmark.startMeasurement()
                device.gemm(transA: false, transB: false, m: s.m, n: s.n, k: s.k, alpha: 1, a: a.buffer, aOffset: 0, lda: s.k,
                            b: b.buffer, bOffset: 0, ldb: s.n, beta: 0, c: c.buffer, cOffset: 0, ldc: s.n)
                device.synchronize()
                benchmark.stopMeasurement()
                let elapsed = (clock.now - start).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                benchmark.measurement(gflops, Int(Double(flops) / seconds / 1e9))
            }
        }
    }
}

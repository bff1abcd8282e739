import Benchmark
import Foundation
import VGGTL

// Kernel benchmarks on every device (the CPU and each OpenCL device), each reported as wall
// clock plus a custom throughput metric (median over iterations):
// - GEMM at VGG16's shapes, in GFLOP/s;
// - every case of `KernelCases.vgg16` (the same calls `vggtl bench --layers` times): each VGG16
//   convolution's forward, backward-data and backward-filter in GFLOP/s (direct-convolution
//   work), each pooling layer's forward and backward, and the ReLU/SGD-momentum/Adam kernels
//   in GB/s.
// Run: cd Benchmarks && swift package benchmark [--filter 'block3_conv1']
// VGGTL_BENCH_SIZE / VGGTL_BENCH_BATCH set the image size and batch of the kernel cases on
// every device (default 150 x 16, the full150 training step; 32 x 2 on PoCL).

// (GEMM shapes: im2col rows x Cout x patch for a batch-16 150x150 step, and fc1.)
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

/// PoCL runs OpenCL on this CPU at a fraction of the CPU backend's speed.
func isPoCL(_ device: Device) -> Bool { device.kind == .opencl && device.name.contains("pthread") }

func environmentInt(_ name: String) -> Int? { ProcessInfo.processInfo.environment[name].flatMap { Int($0) } }

let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)
let gbps = BenchmarkMetric.custom("GB/s", polarity: .prefersLarger, useScalingFactor: false)

/// Short runs (2 s or 30 calls per kernel case): the whole suite (53 kernel cases and up to 5
/// GEMMs per device) has to finish in a few minutes on a 2-core machine.
func configuration(_ metric: BenchmarkMetric, seconds: Int = 2, iterations: Int = 30) -> Benchmark.Configuration {
    .init(metrics: [.wallClock, metric], warmupIterations: 1, scalingFactor: .one, maxDuration: .seconds(seconds), maxIterations: iterations)
}

/// Times one call as the wall-clock measurement and records `work / seconds / 1e9` as `metric`.
func measure(_ benchmark: Benchmark, _ metric: BenchmarkMetric, work: Double, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    benchmark.startMeasurement()
    try body()
    benchmark.stopMeasurement()
    let elapsed = (clock.now - start).components
    let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    benchmark.measurement(metric, Int((work / seconds / 1e9).rounded()))
}

/// Holds a prepared case between package-benchmark's setup and teardown hooks, so its tensors
/// exist only while that case runs rather than for the whole process.
final class PreparedCase {
    var run: (() throws -> Void)?
}

let benchmarks: @Sendable () -> Void = {
    for (deviceName, device) in devices() {
        for s in shapes {
            // PoCL runs at CPU speed: keep its runs to the smaller shapes.
            if isPoCL(device), s.m * s.n * s.k > 1 << 31 { continue }
            guard let a = try? Tensor(zeros: [s.m * s.k], on: device), let b = try? Tensor(zeros: [s.k * s.n], on: device),
                  let c = try? Tensor(zeros: [s.m * s.n], on: device) else { continue }
            Benchmark("sgemm \(s.name) \(s.m)x\(s.n)x\(s.k) \(deviceName)", configuration: configuration(gflops, seconds: 3, iterations: 50)) { benchmark in
                measure(benchmark, gflops, work: 2 * Double(s.m * s.n * s.k)) {
                    device.gemm(transA: false, transB: false, m: s.m, n: s.n, k: s.k, alpha: 1, a: a.buffer, aOffset: 0, lda: s.k,
                                b: b.buffer, bOffset: 0, ldb: s.n, beta: 0, c: c.buffer, cOffset: 0, ldc: s.n)
                    device.synchronize()
                }
            }
        }

        let small = isPoCL(device)
        let size = environmentInt("VGGTL_BENCH_SIZE") ?? (small ? 32 : 150)
        let batch = environmentInt("VGGTL_BENCH_BATCH") ?? (small ? 2 : 16)
        let cases: [KernelCase]
        do {
            cases = try KernelCases.vgg16(on: device, size: size, batch: batch)
        } catch {
            print("vggtl kernel cases on \(deviceName) (size \(size), batch \(batch)): \(error)")
            continue
        }
        for kc in cases {
            let metric = kc.flops != nil ? gflops : gbps
            let work = kc.flops ?? kc.bytes ?? 0
            let prepared = PreparedCase()
            Benchmark("\(kc.name) \(size)x\(size) b\(batch) \(deviceName)", configuration: configuration(metric),
                      closure: { benchmark in
                          guard let run = prepared.run else { return benchmark.error("\(kc.name) was not set up") }
                          try measure(benchmark, metric, work: work, run)
                      },
                      setup: { prepared.run = try kc.prepare() },
                      teardown: { prepared.run = nil })
        }
    }
}

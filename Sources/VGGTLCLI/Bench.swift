import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBench
import VGGTLDistributed

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure img/s and GFLOP/s of the jobs (VGG16: extract224 extract150 full150 full224 part150 bn32, full150jpeg/load150jpeg: the JPEG pipeline with and without training; resnet50-extract224 resnet50-finetune224 inceptionv3-extract299) and GEMM.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Comma-separated cases, or 'all'.") var cases = "all"
    @Option(help: "Timed steps per case (the median is reported).") var steps = 3
    @Option(help: "GEMM size for the peak measurement (0 skips it).") var gemm = 2048
    @Flag(help: "Print JSON for scripts instead of a table.") var json = false
    @Flag(help: "Time every VGG16 convolution (forward, backward-data, backward-filter, each with the algorithm the device's plan runs), pooling layer and elementwise/optimizer kernel instead of the cases.") var layers = false
    @Flag(help: "--layers on an OpenCL device whose autotune is on (GPUs; VGGTL_OCL_AUTOTUNE=1 elsewhere), then the device's entry for its convolution tile table (Sources/VGGTLOpenCL/Convolution/Tuning/) from what the autotune chose, ready to paste (with --json: the report's tuningEntry).") var tune = false
    @Flag(help: "Time the depthwise convolutions of MobileNetV2, EfficientNetB0 and ConvNeXt-Tiny (forward, backward-data, backward-filter) at --size and --batch, in GB/s of the bytes each call must move, instead of the cases.") var depthwise = false
    @Option(help: "Image size for --layers and --depthwise.") var size = 150
    @Option(help: "Batch for --layers and --depthwise.") var batch = 16
    @Flag(help: "Data-parallel training steps (run under mpirun -np N; without it, one process): global img/s and the gradient allreduce time per step, exposed after backward and alone. Cases: part150,bn32 unless --cases names others.")
    var distributed = false
    @Option(help: "Gradient bucket size in MB for --distributed.") var bucketMb: Double = 25
    @Option(help: "How gradients travel for --distributed.") var gradientCompression = GradientCompression.none
    @Option(help: "Batch per rank for --distributed (default: the case's).") var rankBatch: Int?

    func validate() throws {
        guard steps >= 1 else { throw VGGTLError.badFlag(flag: "--steps", value: "\(steps)", expected: "at least 1") }
        guard gemm >= 0 else { throw VGGTLError.badFlag(flag: "--gemm", value: "\(gemm)", expected: "a matrix size, or 0 to skip the GEMM") }
        guard size >= 32 else { throw VGGTLError.badFlag(flag: "--size", value: "\(size)", expected: "at least 32 pixels") }
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        guard bucketMb > 0, bucketMb.isFinite else { throw VGGTLError.badFlag(flag: "--bucket-mb", value: "\(bucketMb)", expected: "a positive size in MB such as 25") }
        if let rankBatch, rankBatch < 1 { throw VGGTLError.badFlag(flag: "--rank-batch", value: "\(rankBatch)", expected: "at least 1") }
    }

    func run() throws {
        let device = try global.openDevice()
        if distributed { try runDistributed(device); return }
        let tuning = tune ? try tunedDevice(device) : nil
        let names = cases == "all" ? Workload.all.map(\.name) : cases.split(separator: ",").map(String.init)
        let chosen = try names.map { n in
            guard let w = Workload.all.first(where: { $0.name == n }) else {
                throw VGGTLError.badFlag(flag: "--cases", value: n, expected: Workload.all.map(\.name).joined(separator: ", ") + " or all")
            }
            return w
        }
        let peak = gemm > 0 ? try WorkloadBench.gemmGFLOPS(on: device, n: gemm) : nil
        if layers || tune || depthwise { try runLayers(device, peak: peak, tuning: tuning); return }
        if !json {
            print("device: \(device.name)")
            if let peak { print(String(format: "sgemm %dx%dx%d: %.1f GFLOP/s (median)", gemm, gemm, gemm, peak)) }
            print("case                     img/s    GFLOP/s   % peak   PyTorch img/s   ratio   network MB")
        }
        var results: [WorkloadResult] = []
        for w in chosen {
            let r = try WorkloadBench.run(w, on: device, steps: steps, gemmPeak: peak)
            results.append(r)
            if !json {
                func f(_ v: Double?, _ width: Int, _ fmt: String) -> String {
                    let s = v.map { String(format: fmt, $0) } ?? "-"
                    return String(repeating: " ", count: max(0, width - s.count)) + s
                }
                print(w.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                      + f(r.imagesPerSecond, 8, "%.2f") + f(r.gflops, 11, "%.1f") + f(r.percentOfPeak, 8, "%.0f%%")
                      + f(r.pytorchImagesPerSecond, 16, "%.2f") + f(r.ratioToPyTorch, 8, "%.2f")
                      + f(r.networkBytes.map { Double($0) / 1e6 }, 13, "%.0f"))
            }
        }
        if json {
            struct Report: Codable { var device: String; var gemmGFLOPS: Double?; var cases: [WorkloadResult] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(Report(device: device.name, gemmGFLOPS: peak, cases: results)), as: UTF8.self))
        }
    }

    /// The device --tune asks: one whose convolution plans time their candidates.
    func tunedDevice(_ device: Device) throws -> ConvolutionTuning {
        guard let tuning = device as? ConvolutionTuning, tuning.convolutionAutotune else {
            throw VGGTLError.badFlag(flag: "--tune", value: device.name,
                                     expected: "an OpenCL device whose autotune is on (GPUs by default; VGGTL_OCL_AUTOTUNE=1 elsewhere)")
        }
        return tuning
    }

    /// The per-layer table (or JSON); with `tuning` (--tune), the tile-table entry after it.
    func runLayers(_ device: Device, peak: Double?, tuning: ConvolutionTuning?) throws {
        let results = depthwise
            ? try WorkloadBench.kernels(KernelCases.depthwise(on: device, size: size, batch: batch), repeats: steps, gemmPeak: peak)
            : try WorkloadBench.layers(size: size, batch: batch, on: device, repeats: steps, gemmPeak: peak)
        let entry = tuning.map { $0.convolutionTuningEntry ?? "// The autotune chose nothing: every pass had one candidate." }
        if json {
            struct Report: Codable {
                var device: String; var size: Int; var batch: Int; var gemmGFLOPS: Double?; var kernels: [KernelResult]
                var tuningEntry: String?
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(Report(device: device.name, size: size, batch: batch, gemmGFLOPS: peak, kernels: results,
                                                         tuningEntry: entry)), as: UTF8.self))
            return
        }
        print("device: \(device.name)")
        if let peak { print(String(format: "sgemm %dx%dx%d: %.1f GFLOP/s (median)", gemm, gemm, gemm, peak)) }
        print("size \(size), batch \(batch); conv GFLOP/s count direct-convolution work (2 x MACs)")
        // The algorithm column is as wide as the longest name: names are never cut.
        let width = max(28, results.map(\.algorithm.count).max() ?? 0) + 2
        print("layer           pass             " + "algorithm".padding(toLength: width, withPad: " ", startingAt: 0)
              + "      ms    GFLOP/s  % peak    GB/s")
        var total = 0.0
        for r in results {
            func f(_ v: Double?, _ width: Int, _ fmt: String) -> String {
                let s = v.map { String(format: fmt, $0) } ?? "-"
                return String(repeating: " ", count: max(0, width - s.count)) + s
            }
            if r.algorithm != "elementwise" { total += r.milliseconds }
            print(r.layer.padding(toLength: 16, withPad: " ", startingAt: 0) + r.pass.padding(toLength: 17, withPad: " ", startingAt: 0)
                  + r.algorithm.padding(toLength: width, withPad: " ", startingAt: 0)
                  + f(r.milliseconds, 8, "%.1f") + f(r.gflops, 11, "%.1f") + f(r.percentOfPeak, 8, "%.0f%%") + f(r.gbPerSecond, 8, "%.1f"))
        }
        print(String(format: "sum of %@ kernels: %.0f ms per batch of %d", depthwise ? "depthwise" : "conv and pool", total, batch))
        if let entry { print("\n" + entry) }
    }

    func runDistributed(_ device: Device) throws {
        let comm = try Job.start(global)
        let names = cases == "all" ? ["part150", "bn32"] : cases.split(separator: ",").map(String.init)
        let chosen = try names.map { n in
            guard var w = Workload.all.first(where: { $0.name == n }) else {
                throw VGGTLError.badFlag(flag: "--cases", value: n, expected: Workload.all.map(\.name).joined(separator: ", "))
            }
            if let rankBatch {
                guard rankBatch >= 1 else { throw VGGTLError.badFlag(flag: "--rank-batch", value: "\(rankBatch)", expected: "at least 1") }
                w = w.withBatch(rankBatch)
            }
            return w
        }
        guard steps >= 2 else { throw VGGTLError.badFlag(flag: "--steps", value: "\(steps)", expected: "at least 2 for --distributed") }
        var results: [DistributedBenchResult] = []
        let ranks = comm?.size ?? 1
        if !json {
            let devices = try comm?.allgatherStrings(device.name, what: "device names") ?? [device.name]
            for (r, d) in devices.enumerated() { print("rank \(r): \(d)") }
            print("case      ranks  batch/rank   img/s  step ms  allreduce exposed ms  allreduce alone ms  gradients MB")
        }
        for w in chosen {
            guard w.kind == .train, !w.fromJPEGs else {
                throw VGGTLError.badFlag(flag: "--cases", value: w.name, expected: "a training case with data in memory (full150, full224, part150, bn32) for --distributed")
            }
            let r = try DistributedBench.run(w, comm: comm, device: device, steps: steps, bucketMegabytes: bucketMb,
                                             compression: gradientCompression)
            results.append(r)
            if !json {
                print(w.name.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%5d %11d %8.2f %8.1f %21.1f %19.1f %13.1f", ranks, r.batchPerRank,
                      r.imagesPerSecond, 1e3 * r.stepSeconds.sorted()[r.stepSeconds.count / 2], 1e3 * r.exposedAllreduceSeconds, 1e3 * r.allreduceSeconds, r.gradientMegabytes))
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}

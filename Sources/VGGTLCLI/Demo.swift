import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain
import VGGTLIO

/// The built-in transfer-learning demo on Fashion-MNIST: `TransferDemo` with these flags.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The built-in transfer-learning demo on Fashion-MNIST: three methods, several seeds (within 10 minutes on 2 CPU cores).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Fashion-MNIST IDX folder.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Output folder (runs, curves, results).") var out = "runs/demo"
    @Option(help: "Source-task training images (classes 0-4).") var sourceImages = 5000
    @Option(help: "Source-task epochs.") var sourceEpochs = 2
    @Option(help: "Target-task training images per class (classes 5-9).") var perClass = 100
    @Option(help: "Seeds per method (--seed, --seed+1, ...).") var seeds = 3
    @Option(help: "Epochs for the head on features (a).") var headEpochs = 30
    @Option(help: "Epochs for fine-tuning (b).") var finetuneEpochs = 5
    @Option(help: "Epochs from scratch (c).") var scratchEpochs = 8
    @Option(help: "Target test images per class scored after every epoch (jump start, time to target); the final score uses all.") var valPerClass = 100
    @Option(help: "Target test images per class for the final score (Fashion-MNIST has 1,000).") var testPerClass = 1000
    @Option(help: "An accuracy that 'time to target' waits for (repeat for several).") var target: [Double] = [0.6, 0.85]
    @Option(help: "Batch size.") var batch = 32
    @Option(help: "Fashion-MNIST training images per class, after the --per-class ones trained on, that choose the restored epoch (never test images).") var selectPerClass = 50
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var backbone: ModelOptions<DemoDefaults>
    @Option(help: "Input side in pixels (the 28x28 images are resized to it). (default: 32; InceptionV3: 75, its minimum)") var size: Int?

    func validate() throws {
        for (flag, v) in [("--source-images", sourceImages), ("--source-epochs", sourceEpochs), ("--per-class", perClass), ("--seeds", seeds),
                          ("--head-epochs", headEpochs), ("--finetune-epochs", finetuneEpochs), ("--scratch-epochs", scratchEpochs),
                          ("--val-per-class", valPerClass), ("--test-per-class", testPerClass), ("--batch", batch),
                          ("--select-per-class", selectPerClass)] where v < 1 {
            throw VGGTLError.badFlag(flag: flag, value: "\(v)", expected: "at least 1")
        }
        for t in target where !(t > 0 && t <= 1) { throw VGGTLError.badFlag(flag: "--target", value: "\(t)", expected: "an accuracy in (0, 1]") }
    }

    func run() throws {
        try checkWritable(out, flag: "--out")
        let lock = try takeOutFolder(out)
        defer { lock?.release() }
        let device = try global.openDevice()
        var demo = TransferDemo(data: URL(fileURLWithPath: data), outDir: URL(fileURLWithPath: out))
        (demo.sourceImages, demo.sourceEpochs, demo.perClass, demo.seeds) = (sourceImages, sourceEpochs, perClass, seeds)
        (demo.headEpochs, demo.finetuneEpochs, demo.scratchEpochs) = (headEpochs, finetuneEpochs, scratchEpochs)
        (demo.valPerClass, demo.testPerClass, demo.targets, demo.batch) = (valPerClass, testPerClass, target, batch)
        (demo.trunk, demo.side, demo.seed) = (backbone.model, size, global.seed)
        (demo.selectPerClass, demo.restoreBest, demo.batchNormRecalibration) = (selectPerClass, selection.restoreBest, selection.batchNormRecalibration)
        demo.machine = machineLines(global)
        let text = try demo.run(on: device)
        print("\n" + text)
        try writeAtomically(Data(text.utf8), to: demo.outDir.appendingPathComponent("results.md"))
        print("curves and histories: \(out)/*.svg, *.csv; table: \(out)/results.md")
    }
}

/// `demo` and `compare`: how each run's epoch is chosen and BatchNorm recalibrated (both on,
/// each with an opt-out to compare without it).
struct SelectionOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Also score each run's epoch with the lowest loss on the selection split of training images (restored, as Keras' restore_best_weights).") var restoreBest = true
    @Flag(inversion: .prefixedNo, help: "Recompute BatchNorm's moving statistics over the training images at each epoch's end (precise BatchNorm), before the scoring.") var bnRecalibrate = true
    @Option(help: "The training batches --bn-recalibrate uses at most.") var bnRecalibrateBatches = BatchNormRecalibration.defaultBatches

    func validate() throws {
        guard bnRecalibrateBatches >= 1 else { throw VGGTLError.badFlag(flag: "--bn-recalibrate-batches", value: "\(bnRecalibrateBatches)", expected: "at least 1 batch") }
    }

    var batchNormRecalibration: BatchNormRecalibration? { bnRecalibrate ? BatchNormRecalibration(maxBatches: bnRecalibrateBatches) : nil }
}

/// The machine a results table was measured on: the CPU's model (/proc/cpuinfo), the OpenBLAS
/// kernels in use and who chose them, and the user's OPENBLAS_CORETYPE.
func machineLines(_ global: GlobalOptions) -> [String] {
    let options = RunContext.current.knobs.settings.cpu
    let coreType = options.openblasCoreType.map { "OPENBLAS_CORETYPE=\($0)" } ?? "OPENBLAS_CORETYPE not set"
    guard let cpu = try? DeviceChoice.describeCPU(threads: global.threads, options: options) else { return ["Machine: \(coreType)."] }
    return ["Machine: CPU \(cpu.model) (/proc/cpuinfo), \(cpu.threads) threads; OpenBLAS \(cpu.blasKernels) kernels (\(cpu.blasKernelSource)); \(coreType)."]
}

import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLIO
import VGGTLTrain

/// `vggtl lr-find`: fastai's learning-rate finder on the model `finetune` would train, with
/// finetune's own options so that a finetune command line becomes a sweep by its first word.
/// It writes lr_find.csv and lr_find.svg into --out and nothing else: no checkpoint, and the
/// weights it starts from stay as they are.
struct LRFind: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lr-find",
        abstract: "Find a learning rate for finetune: one step per batch at rates growing from --start-lr to --end-lr, on the model finetune would train (same options; --lr, --epochs and --val are not used, --class-weight and --sampler apply, --accumulate and --restore-best are refused). Writes lr_find.csv and lr_find.svg into --out.")
    @OptionGroup var finetune: Finetune
    @Option(help: "Steps of the sweep, one batch each (the data is cycled when it has fewer batches).") var steps = 100
    @Option(help: "The sweep's first learning rate.") var startLr = 1e-7
    @Option(help: "The sweep's last learning rate (it stops early once the loss explodes).") var endLr = 10.0

    static let csvName = "lr_find.csv", svgName = "lr_find.svg"

    func validate() throws {
        guard steps >= 2 else { throw VGGTLError.badFlag(flag: "--steps", value: "\(steps)", expected: "at least 2 steps, such as 100") }
        guard startLr > 0, startLr.isFinite else { throw VGGTLError.badFlag(flag: "--start-lr", value: "\(startLr)", expected: "a positive rate such as 1e-7") }
        guard endLr > startLr, endLr.isFinite else {
            throw VGGTLError.badFlag(flag: "--end-lr", value: "\(endLr)", expected: "a rate above --start-lr \(startLr), such as 10")
        }
        if finetune.opts.resume {
            throw VGGTLError.invalidArgument("--resume: lr-find starts from the weights a new run would; to find the rate for a run's next stage, give its folder as --weights")
        }
        // A sweep is one optimiser step per batch and ends without a best epoch: these two
        // flags (and --bn-recalibrate) would change nothing it measures, so they are refused rather than ignored.
        if finetune.opts.accumulate != 1 {
            throw VGGTLError.invalidArgument("--accumulate \(finetune.opts.accumulate): lr-find takes one optimiser step per batch; sweep with --batch instead")
        }
        if finetune.opts.bnRecalibrate {
            throw VGGTLError.invalidArgument("--bn-recalibrate: lr-find trains no epochs, so there is no epoch's end to recalibrate BatchNorm at")
        }
        if finetune.opts.restoreBest {
            throw VGGTLError.invalidArgument("--restore-best: lr-find trains no epochs and keeps no weights, so there is no best epoch to restore")
        }
        if finetune.headEpochs > 0 {
            throw VGGTLError.invalidArgument("--head-epochs \(finetune.headEpochs): lr-find sweeps one stage; for the head use --unfreeze none, "
                + "for the stage after it train the head first and give its run folder as --weights with --unfreeze")
        }
    }

    func run() throws {
        let out = URL(fileURLWithPath: finetune.opts.out).standardizedFileURL.resolvingSymlinksInPath()
        for (flag, folder) in [("--weights", finetune.weights.weights), ("--top-model", finetune.topModel)] {
            guard let folder else { continue }
            let f = URL(fileURLWithPath: folder).standardizedFileURL.resolvingSymlinksInPath().path
            guard out.path == f || out.path.hasPrefix(f + "/") else { continue }
            // --out was created while the flags were checked: an empty one goes again.
            if out.path != f { rmdir(out.path) }
            throw VGGTLError.badFlag(flag: "--out", value: finetune.opts.out, expected: "a folder outside \(flag) \(folder): lr-find leaves the run it starts from as it is")
        }
        if FileManager.default.fileExists(atPath: out.appendingPathComponent("last.json").path) {
            throw VGGTLError.badFlag(flag: "--out", value: finetune.opts.out, expected: "a folder that holds no run: lr-find writes \(Self.csvName) and \(Self.svgName) next to nothing of a run's")
        }
        let lock = try takeOutFolder(finetune.opts.out)
        defer { lock?.release() }
        let p = try finetune.prepare()
        let sweep = LearningRateSweep(startRate: startLr, endRate: endLr, steps: steps)
        print("lr-find: \(steps) steps from \(rate(startLr)) to \(rate(endLr)), batch \(finetune.opts.batch), "
              + "\(p.train.batchCount) batch\(p.train.batchCount == 1 ? "" : "es") per pass over the data")
        let finding = try p.session.findLearningRate(train: p.train, sweep: sweep)
        switch finding.stop {
        case .completed: print("the sweep ran all \(steps) steps")
        case let .diverged(r): print("stopped at step \(finding.points.count) (lr \(rate(r))): the smoothed loss passed 4x its best")
        case let .nonFinite(r): print("stopped at step \(finding.points.count + 1) (lr \(rate(r))): the loss is not finite")
        }
        let dir = URL(fileURLWithPath: finetune.opts.out)
        try writeAtomically(Data(finding.csv.utf8), to: dir.appendingPathComponent(Self.csvName))
        try writeAtomically(Data(learningRateSVG(finding, title: "lr-find: \(p.session.configuration.title)").utf8),
                            to: dir.appendingPathComponent(Self.svgName))
        print("wrote \(dir.appendingPathComponent(Self.csvName).path), \(dir.appendingPathComponent(Self.svgName).path)")
        guard let steepest = finding.steepest, let minimum = finding.minimumOverTen else {
            throw VGGTLError.invalidArgument("the sweep stopped after \(finding.points.count) step\(finding.points.count == 1 ? "" : "s"), too few to suggest a rate: "
                + "lower --start-lr or --end-lr, or raise --steps")
        }
        print("suggested learning rates: \(rate(steepest)) (steepest descent of the smoothed loss), \(rate(minimum)) (its minimum / 10); "
              + "pass one to finetune as --lr")
    }

    private func rate(_ r: Double) -> String { String(format: "%.2e", r) }
}

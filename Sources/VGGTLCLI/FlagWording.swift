import Foundation
import VGGTL

/// The one place where the library's errors and events get the CLI's words: the library names
/// what is wrong (a `Setting`, a run folder to resume) without flags, and this says it as the
/// commands have always said it, with the flags a user types.
enum FlagWording {
    /// The flag of each setting.
    static func flag(_ setting: Setting) -> String {
        switch setting {
        case .inputSize: return "--size"
        case .batch: return "--batch"
        case .learningRate: return "--lr"
        case .momentum: return "--momentum"
        case .weightDecay: return "--weight-decay"
        case .schedule: return "--schedule"
        case .unfreeze: return "--unfreeze"
        case .freezeFirst: return "--freeze-first"
        case .device: return "--device"
        case .weights: return "--weights"
        case .naming: return "--naming"
        case .checkpoint: return "--checkpoint"
        case .tensorboard: return "--tensorboard"
        case .benchmarkCase: return "--cases"
        }
    }

    /// An error as the CLI prints it.
    static func message(_ error: VGGTLError) -> String {
        switch error {
        case let .invalidSetting(setting, value, expected):
            return VGGTLError.badFlag(flag: flag(setting), value: value, expected: expected).description
        case let .runStopped(cause, kept):
            return VGGTLError.runStopped(cause: .invalidArgument(message(cause)), kept: kept).description
        // Training sessions.
        case let .earlyStoppingWithoutValidation(patience):
            return VGGTLError.badFlag(flag: "--early-stopping", value: "\(patience)",
                                      expected: "validation data to watch: add --val DIR or --val-split F (train-top: --val-features or --val-split)").description
        case let .nothingToResume(folder):
            return "--resume: \(folder) has no last.json to resume from; run without --resume to start"
        case let .runExists(folder):
            return "\(folder) already holds a run; add --resume to continue it or choose another --out"
        case let .resumedClassesDiffer(folder, saved, now):
            return "--resume: the run in \(folder) was trained on \(saved.count) classes \(saved), "
                + "the data now has \(now.count) classes \(now); resume with the same data, or start a new run with another --out"
        case let .resumedModelDiffers(folder, saved):
            return "--resume: the run in \(folder) was started with another model or input size (\(saved)); use the same flags or a new --out"
        case let .verificationFailed(device, failing, checked, worst):
            return "--verify: on the first batch \(device) differs from the CPU by more than float32 rounding explains in "
                + "\(failing) of \(checked) tensors: \(worst). Add --verify-report for every tensor; train with --device cpu if the device's results cannot be trusted"
        case let .headDoesNotFit(file, details):
            return "--strict-weights: the head in \(file) does not fit this task (\(details)); drop --strict-weights to start the head fresh"
        case let .topModelClassesDiffer(folder, trained, now):
            return "--top-model \(folder) was trained on \(trained.count) classes \(trained), "
                + "--data has \(now.count) classes \(now); the class folders must match"
        default:
            return error.description
        }
    }

    /// Prints a training session's event as the training commands print it.
    static func report(_ event: TrainingSession.Event) {
        switch event {
        case let .headStartsFresh(file, details):
            print("the head in \(file) does not fit this task (\(details)): the trunk loaded, the head starts fresh (--strict-weights makes this an error)")
        case let .skippedImages(newly, total):
            stderr("warning: \(newly) unreadable image\(newly == 1 ? "" : "s") skipped (\(total) so far); add --strict to stop instead")
        default:
            TrainingSession.Event.print(event)
        }
    }
}

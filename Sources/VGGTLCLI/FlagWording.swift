import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels
import VGGTLTrain

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
        case .threads: return "--threads"
        case .stepTimeout: return "--mpi-timeout"
        case .syncBatchNorm: return "--sync-bn"
        case .gradientCompression: return "--gradient-compression"
        case .model: return "--model"
        case .headPooling: return "--pooling"
        case .headHidden: return "--hidden"
        case .headDropout: return "--dropout"
        case .includeTop: return "--include-top"
        case .batchNormStatistics: return "--bn-batch-statistics"
        case .preprocessing: return "--preprocess"
        case .trainingData: return "--data (train-top: --features)"
        case .optimizer: return "--optimizer"
        case .nesterov: return "--nesterov"
        case .epochs: return "--epochs"
        case .accumulate: return "--accumulate"
        case .classWeight: return "--class-weight"
        case .sampler: return "--sampler"
        case .batchNormRecalibration: return "--bn-recalibrate"
        }
    }

    /// "--lr 0.01 in the run, 0.001 now"; the training data by its words, as it has two flags.
    static func change(_ c: SettingChange, was: String) -> String {
        c.setting == .trainingData ? "the training data: \(c.saved) \(was), \(c.now) now" : "\(flag(c.setting)) \(c.saved) \(was), \(c.now) now"
    }

    /// An error as the CLI prints it.
    static func message(_ error: VGGTLError) -> String {
        switch error {
        case let .invalidSetting(setting, value, expected):
            return VGGTLError.badFlag(flag: flag(setting), value: value, expected: expected).description
        case let .classWeights(source, reason):
            return "--class-weight \(source): \(reason)"
        case let .runStopped(cause, kept):
            return message(cause) + (kept.map { "; \($0): fix the cause and add --resume to continue from it" } ?? "; no checkpoint had been written yet")
        // Devices.
        case .noOpenCLDevice:
            return "--device opencl: no OpenCL device found. Install a driver (for the CPU: apt-get install pocl-opencl-icd), check `vggtl devices`, or use --device cpu"
        case let .deviceIndexOutOfRange(index, count):
            return "--device opencl:\(index): there \(count == 1 ? "is 1 OpenCL device" : "are \(count) OpenCL devices") "
                + "(opencl:0\(count > 1 ? "...opencl:\(count - 1)" : "")); see `vggtl devices`"
        case let .kernelBuild(file, device, log):
            return "OpenCL kernels \(file) failed to build on \(device) (the driver's build log follows; use --device cpu meanwhile, "
                + "and report the log with `vggtl devices`):\n\(log)"
        case let .allocationTooLarge(bytes, limit, device, what):
            return "\(what) needs one buffer of \(mib(bytes)) but \(device) allows at most \(mib(limit)) per allocation "
                + "(CL_DEVICE_MAX_MEM_ALLOC_SIZE); use a smaller batch or input size, or --device cpu"
        case let .outOfDeviceMemory(bytes, device):
            return "\(device) is out of memory allocating \(mib(bytes)); use a smaller --batch"
        case let .deviceFailed(device, call, code):
            return "\(device) failed: \(call) returned \(code) (\(openCLErrorName(code))); the device was lost, reset or ran out of resources. "
                + "Check the driver (`vggtl devices`), then resume, or use --device cpu"
        case let .inputTooSmall(reason):
            return "\(reason); use a larger --size"
        case let .inputTooLarge(reason):
            return "\(reason); use a smaller --batch or --size"
        case let .batchDoesNotFit(reason, batch, suggested):
            return "\(reason); at --batch \(batch) it does not fit: try --batch \(suggested)\(suggested <= 1 ? " with a smaller --size" : ""), or --device cpu"
        // Weights.
        case let .missingWeights(file, tensors, fileLayers):
            return "\(file) has no weights for \(listSome(tensors)) (the file has \(fileLayers.isEmpty ? "no layers" : "layers " + listSome(fileLayers))); "
                + "check that the file holds this model (--model: vgg16, vgg16-bn, resnet50, inceptionv3 or a -torchvision twin), "
                + "or add --allow-missing-weights to start these layers from random values"
        case let .weightsOutOfOrder(file, reason, found):
            return "\(file): \(reason); check --model (names found: \(listSome(found)))"
        case let .unexpectedBatchNorm(file, layer, after, found):
            return "\(file): it has BatchNorm layers (\(layer) after \(after)) but the model has none: build the VGG16-BN trunk (--bn) for these weights "
                + "(names found: \(listSome(found)))"
        case let .weightsOfAnotherModel(model, file, holds, family):
            return "--model \(model): \(file) holds \(holds) weights, another architecture; use --model \(family) (it builds the architecture the weights describe)"
        case let .weightsWithoutBatchNorm(file):
            return "--bn (--model vgg16-bn): \(file) has no BatchNorm tensors (a plain VGG16); drop --bn, or use VGG16-BN weights"
        case let .noImageNetWeights(model, publishedFor):
            return VGGTLError.badFlag(flag: "--weights", value: "imagenet", expected: "none or a weights file for --model \(model): Keras publishes ImageNet weights for "
                                      + publishedFor.joined(separator: ", ") + " only").description
        case let .weightsNotCached(file, path, url, md5, reason):
            // Only --weights imagenet downloads: say the ways on from here.
            return "--weights imagenet: Keras' ImageNet weights \(file) are not in the Keras cache and cannot be downloaded here (\(reason)). "
                + "To go on: fetch \(url) on a machine with internet access and put it at \(path) (MD5 \(md5)), then run again; "
                + "or give a weights file you have with --weights FILE (.h5 or .safetensors); or start from random weights with --weights none"
        case let .notLayerNamed(file, tensor):
            return "\(file): tensor name \(tensor) is not 'layer/weight'; Keras HDF5 needs layer names"
                + (tensor.contains(".") ? " (these are PyTorch names: convert with --naming keras)" : "")
        // Runs and checkpoints.
        case let .noCheckpoint(folder, name):
            return "\(folder) has no \(name).json" + (name == "best" ? " (best is kept only for runs with validation data); use --checkpoint last" : "; train into it first")
        case let .optimizerStateMissing(file, tensor):
            return "\(file): optimizer state \(tensor) is missing or has another shape; start a new run instead of --resume"
        case let .interrupted(signal, epoch, batch, batches, checkpoint):
            return "interrupted by \(signal) in epoch \(epoch) after batch \(batch) of \(batches); saved \(checkpoint): run the same command with --resume to continue"
        case let .nonFiniteLoss(value, epoch, batch, step, lr):
            return "the training loss became \(value.isNaN ? "NaN" : value > 0 ? "+infinity" : "-infinity") at epoch \(epoch), batch \(batch) (step \(step)); "
                + "the likely cause is a learning rate too high for this model and data (\(lr)): lower --lr (e.g. \(lr / 10)), or check the inputs and labels"
        case let .nonFiniteWeights(tensor, epoch):
            return "the weights became NaN or infinite during epoch \(epoch) (\(tensor)); the learning rate is probably too high: lower --lr"
        case let .unreadableImages(files, reasons):
            let first = zip(files, reasons).prefix(3).map { "\($0): \($1)" }.joined(separator: "; ")
            return "--strict: \(files.count) image\(files.count == 1 ? "" : "s") cannot be read (\(first)\(files.count > 3 ? "; ..." : "")); "
                + "fix or remove \(files.count == 1 ? "it" : "them"), or drop --strict to skip unreadable images with a warning"
        // Training sessions.
        case let .earlyStoppingWithoutValidation(patience):
            return VGGTLError.badFlag(flag: "--early-stopping", value: "\(patience)",
                                      expected: "validation data to watch: add --val DIR or --val-split F (train-top: --val-features or --val-split)").description
        case .restoreBestWithoutValidation:
            return "--restore-best chooses the epoch by val_loss and needs validation data: add --val DIR or --val-split F (train-top: --val-features or --val-split)"
        case let .nothingToResume(folder):
            return "--resume: \(folder) has no last.json to resume from; run without --resume to start"
        case let .runExists(folder):
            return "\(folder) already holds a run; add --resume to continue it or choose another --out"
        case let .resumedClassesDiffer(folder, saved, now):
            return "--resume: the run in \(folder) was trained on \(saved.count) classes \(saved), "
                + "the data now has \(now.count) classes \(now); resume with the same data, or start a new run with another --out"
        case let .resumeRefused(folder, changes):
            return "--resume: the run in \(folder) cannot continue with \(changes.map { change($0, was: "in the run") }.joined(separator: "; ")): "
                + "resume with the run's settings, or start a new run with another --out"
        case let .folderInUse(folder, lockFile, holder):
            return "--out \(folder) is in use by \(holder); wait for it to finish, stop it, or choose another --out "
                + "(if that process no longer runs, delete \(lockFile))"
        case let .topModelHeadDiffers(folder, changes):
            let asked = changes.map { "\(flag($0.setting)) \($0.now)" }.joined(separator: " "), held = changes.map { "\(flag($0.setting)) \($0.saved)" }.joined(separator: " ")
            return "--top-model \(folder): \(asked) contradicts the head it holds (\(held)); drop \(changes.map { flag($0.setting) }.joined(separator: " and ")) "
                + "to start from that head, or train a top model with \(asked)"
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
        case let .settingTaken(c, effect):
            print("note: --resume: \(change(c, was: "in the run")): \(effect)")
        case let .alreadyFinished(folder, epochs, asked):
            print("--resume: the run in \(folder.path) has finished its \(epochs) epochs\(asked < epochs ? " (--epochs \(asked) asks for fewer)" : ""): "
                  + "nothing to train. To train it further, resume it with a larger --epochs (such as --resume --epochs \(epochs * 2))")
        case .batchNormRecalibration(layers: 0, _):
            print("--bn-recalibrate does nothing: no BatchNorm layer of this model normalises with batch statistics while it trains "
                  + "(finetune keeps unfrozen BatchNorm layers on their moving statistics unless --bn-batch-statistics)")
        case let .skippedImages(newly, total):
            stderr("warning: \(newly) unreadable image\(newly == 1 ? "" : "s") skipped (\(total) so far); add --strict to stop instead")
        default:
            TrainingSession.Event.print(event)
        }
    }
}

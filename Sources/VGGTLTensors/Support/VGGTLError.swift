/// The one error type of vggtl. Every case names what is wrong (file, layer, setting or device)
/// and its description says what to do, in words that name no command-line flag: the CLI words
/// the cases that mention a setting with its flags (VGGTLCLI/FlagWording.swift), prints the
/// message and exits non-zero.
public enum VGGTLError: Error, CustomStringConvertible, Equatable, Codable {
    /// A command-line flag's value (the CLI's own checks).
    case badFlag(flag: String, value: String, expected: String)
    /// A setting's value that cannot work, and what would.
    case invalidSetting(Setting, value: String, expected: String)
    case noOpenCLDevice
    case deviceIndexOutOfRange(index: Int, count: Int)
    case openCL(call: String, code: Int32, device: String)
    case kernelBuild(file: String, device: String, log: String)
    case allocationTooLarge(bytes: Int, limit: Int, device: String, what: String)
    case outOfDeviceMemory(bytes: Int, device: String)
    case library(name: String, reason: String)
    case shapeMismatch(what: String, expected: [Int], got: [Int])
    case invalidArgument(String)
    // Files (weights, checkpoints, .npy): each names the file and says what to do.
    case corruptFile(file: String, format: String, reason: String)
    case truncatedFile(file: String, format: String, expectedBytes: Int, actualBytes: Int)
    case unsupportedFile(file: String, reason: String)
    case fileWrite(file: String, reason: String)
    case hdf5(file: String, operation: String, message: String)
    case weightShapeMismatch(file: String, tensor: String, fileShape: [Int], modelShape: [Int])
    case missingWeights(file: String, tensors: [String], fileLayers: [String])
    case weightNaming(file: String, reason: String, found: [String])
    /// The file's layers pair by order with the model's but one's weights differ (`reason`).
    case weightsOutOfOrder(file: String, reason: String, found: [String])
    /// A convolution of the file has its BatchNorm (`layer` after `after`), the model has none.
    case unexpectedBatchNorm(file: String, layer: String, after: String, found: [String])
    /// The file holds weights of another architecture (`holds`) of the model's (`model`) family.
    case weightsOfAnotherModel(model: String, file: String, holds: String, family: String)
    /// VGG16-BN asked for, and the file holds a plain VGG16.
    case weightsWithoutBatchNorm(file: String)
    /// Keras publishes no ImageNet weights for `model`.
    case noImageNetWeights(model: String, publishedFor: [String])
    /// A Keras HDF5 file needs "layer/weight" names.
    case notLayerNamed(file: String, tensor: String)
    case weightsNotCached(file: String, path: String, url: String, md5: String, reason: String)
    case checksumMismatch(file: String, url: String, expected: String, got: String)
    /// A file already in the Keras cache whose MD5 is not the published one.
    case cachedWeightsDamaged(path: String, url: String, expected: String, got: String)
    // Runs: what stopped a training run, and what was kept.
    /// A run folder without the checkpoint asked for ("best" or "last").
    case noCheckpoint(folder: String, name: String)
    /// A checkpoint's arrays lack the optimizer state a resume needs.
    case optimizerStateMissing(file: String, tensor: String)
    /// The input is too small for a layer's window (`reason`): a larger input size is needed.
    case inputTooSmall(String)
    /// The work is too large for the device's kernels (`reason`): a smaller batch or input is needed.
    case inputTooLarge(String)
    /// SIGINT/SIGTERM: a checkpoint was written at the last finished batch.
    case interrupted(signal: String, epoch: Int, batch: Int, batches: Int, checkpoint: String)
    /// The training loss became NaN or infinite at a step (epoch and batch count from 1).
    case nonFiniteLoss(value: Float, epoch: Int, batch: Int, step: Int, learningRate: Float)
    /// A model's saved arrays hold NaN or infinity (checked before a checkpoint is written).
    case nonFiniteWeights(tensor: String, epoch: Int)
    /// A device allocation failed at this batch size; `suggestedBatch` is one that should fit.
    case batchDoesNotFit(reason: String, batch: Int, suggestedBatch: Int)
    /// An OpenCL call failed after the device was open (a lost or reset device, a driver fault).
    case deviceFailed(device: String, call: String, code: Int32)
    /// Images that could not be read under --strict.
    case unreadableImages(files: [String], reasons: [String])
    /// A run stopped by `cause`; `kept` says which checkpoint survives and where (nil: none was
    /// written yet).
    indirect case runStopped(cause: VGGTLError, kept: String?)
    /// Data-parallel training under MPI: what went wrong, seen from `rank` of `size`.
    case distributed(rank: Int, size: Int, reason: String)
    // Training sessions (`TrainingSession`): a run that cannot start as configured.
    /// Early stopping watches val_loss, and there is no validation data.
    case earlyStoppingWithoutValidation(patience: Int)
    /// Restoring the best weights needs val_loss to choose them by, and there is no validation data.
    case restoreBestWithoutValidation
    /// Resuming a run folder without a last checkpoint.
    case nothingToResume(folder: String)
    /// A fresh run into a folder that holds one.
    case runExists(folder: String)
    /// Resuming on data with other classes than the run's.
    case resumedClassesDiffer(folder: String, saved: [String], now: [String])
    /// Resuming with settings that would make another model or task than the run's.
    case resumeRefused(folder: String, changes: [SettingChange])
    /// A folder another process is writing into (`holder`: pid, host, command, start).
    case folderInUse(folder: String, lockFile: String, holder: String)
    /// The first batch on `device` and on the CPU differ beyond float32 rounding in `failing`
    /// of `checked` tensors; `worst`: the numbers of the worst three.
    case verificationFailed(device: String, failing: Int, checked: Int, worst: String)
    /// The head in the starting weights does not fit the task, and it must.
    case headDoesNotFit(file: String, details: String)
    /// A run whose head should start this model's was trained on other classes.
    case topModelClassesDiffer(folder: String, trained: [String], now: [String])
    /// The head asked for contradicts the architecture of the top model's (`saved`: the top model's).
    case topModelHeadDiffers(folder: String, changes: [SettingChange])
    /// Class weights that cannot be used: `source` is "balanced" or the weights file.
    case classWeights(source: String, reason: String)

    public var description: String {
        switch self {
        case let .badFlag(flag, value, expected):
            return "invalid value '\(value)' for \(flag): expected \(expected)"
        case let .invalidSetting(setting, value, expected):
            return "invalid \(setting.title) '\(value)': expected \(expected)"
        case .noOpenCLDevice:
            return "no OpenCL device found. Install a driver (for the CPU: apt-get install pocl-opencl-icd), check `vggtl devices`, or use the CPU"
        case let .deviceIndexOutOfRange(index, count):
            return "OpenCL device \(index): there \(count == 1 ? "is 1 OpenCL device" : "are \(count) OpenCL devices") (opencl:0\(count > 1 ? "...opencl:\(count - 1)" : "")); see `vggtl devices`"
        case let .openCL(call, code, device):
            return "OpenCL error \(code) (\(openCLErrorName(code))) in \(call) on \(device)"
        case let .kernelBuild(file, device, log):
            return "OpenCL kernels \(file) failed to build on \(device) (the driver's build log follows; use the CPU meanwhile, and report the log with `vggtl devices`):\n\(log)"
        case let .allocationTooLarge(bytes, limit, device, what):
            return "\(what) needs one buffer of \(mib(bytes)) but \(device) allows at most \(mib(limit)) per allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE); use a smaller batch or input size, or the CPU"
        case let .outOfDeviceMemory(bytes, device):
            return "\(device) is out of memory allocating \(mib(bytes)); use a smaller batch"
        case let .library(name, reason):
            return "cannot use \(name): \(reason)"
        case let .shapeMismatch(what, expected, got):
            return "\(what): expected shape \(expected), got \(got)"
        case let .invalidArgument(message):
            return message
        case let .corruptFile(file, format, reason):
            return "\(file) is not a valid \(format) file: \(reason); re-download or re-save it"
        case let .truncatedFile(file, format, expected, actual):
            return "\(file) is truncated: its \(format) header needs \(expected) bytes but the file has \(actual); re-download or re-save it"
        case let .unsupportedFile(file, reason):
            return "cannot read \(file): \(reason)"
        case let .fileWrite(file, reason):
            return "cannot write \(file): \(reason); check the directory exists, is writable and has free space"
        case let .hdf5(file, operation, message):
            return "HDF5 error in \(operation) on \(file): \(message); check that the file is a complete, uncorrupted HDF5 file"
        case let .weightShapeMismatch(file, tensor, fileShape, modelShape):
            return "\(tensor): file has shape \(compactShape(fileShape)), model expects \(compactShape(modelShape)) (\(file)); "
                + "build the model with the file's architecture (input channels, units, classes) or leave this layer out of the load"
        case let .missingWeights(file, tensors, fileLayers):
            return "\(file) has no weights for \(listSome(tensors)) (the file has \(fileLayers.isEmpty ? "no layers" : "layers " + listSome(fileLayers))); "
                + "check that the file holds this model (vgg16, vgg16-bn, resnet50, inceptionv3 or a -torchvision twin), or allow missing weights to start these layers from random values"
        case let .weightNaming(file, reason, found):
            return "\(file): \(reason) (names found: \(listSome(found)))"
        case let .weightsOutOfOrder(file, reason, found):
            return "\(file): \(reason); check the model's architecture (names found: \(listSome(found)))"
        case let .unexpectedBatchNorm(file, layer, after, found):
            return "\(file): it has BatchNorm layers (\(layer) after \(after)) but the model has none: build the VGG16-BN trunk for these weights "
                + "(names found: \(listSome(found)))"
        case let .weightsOfAnotherModel(model, file, holds, family):
            return "\(file) holds \(holds) weights, another architecture than \(model); build \(family) instead (it builds the architecture the weights describe)"
        case let .weightsWithoutBatchNorm(file):
            return "\(file) has no BatchNorm tensors (a plain VGG16) for VGG16-BN; build VGG16, or use VGG16-BN weights"
        case let .noImageNetWeights(model, publishedFor):
            return "Keras publishes no ImageNet weights for \(model) (only for \(publishedFor.joined(separator: ", "))): start from random weights or a weights file"
        case let .notLayerNamed(file, tensor):
            return "\(file): tensor name \(tensor) is not 'layer/weight'; Keras HDF5 needs layer names"
                + (tensor.contains(".") ? " (these are PyTorch names: convert them to Keras names first)" : "")
        case let .weightsNotCached(file, path, url, md5, reason):
            return "ImageNet weights \(file) are not in the Keras cache and cannot be downloaded (\(reason)). "
                + "Download \(url) on a machine with internet access and put it at \(path) (MD5 \(md5))"
        case let .checksumMismatch(file, url, expected, got):
            return "\(file) has MD5 \(got) but Keras publishes \(expected) for \(url): the download is damaged or not that file; delete it and try again"
        case let .cachedWeightsDamaged(path, url, expected, got):
            return "the cached ImageNet weights \(path) have MD5 \(got), not the \(expected) Keras publishes for \(url): "
                + "the file is damaged or not the weights of that name. Delete it (rm '\(path)') and run again to download it, or put the right file there"
        case let .noCheckpoint(folder, name):
            return "\(folder) has no \(name).json" + (name == "best" ? " (best is kept only for runs with validation data); use the last checkpoint" : "; train into it first")
        case let .optimizerStateMissing(file, tensor):
            return "\(file): optimizer state \(tensor) is missing or has another shape; start a new run instead of resuming"
        case let .inputTooSmall(reason):
            return "\(reason); use a larger input size"
        case let .inputTooLarge(reason):
            return "\(reason); use a smaller batch or input size"
        case let .interrupted(signal, epoch, batch, batches, checkpoint):
            return "interrupted by \(signal) in epoch \(epoch) after batch \(batch) of \(batches); saved \(checkpoint): resume the run to continue"
        case let .nonFiniteLoss(value, epoch, batch, step, lr):
            return "the training loss became \(value.isNaN ? "NaN" : value > 0 ? "+infinity" : "-infinity") at epoch \(epoch), batch \(batch) (step \(step)); the likely cause is a learning rate too high for this model and data (\(lr)): lower the learning rate (e.g. \(lr / 10)), or check the inputs and labels"
        case let .nonFiniteWeights(tensor, epoch):
            return "the weights became NaN or infinite during epoch \(epoch) (\(tensor)); the learning rate is probably too high: lower it"
        case let .batchDoesNotFit(reason, batch, suggested):
            return "\(reason); at batch size \(batch) it does not fit: try batch size \(suggested)\(suggested <= 1 ? " with a smaller input size" : ""), or the CPU"
        case let .deviceFailed(device, call, code):
            return "\(device) failed: \(call) returned \(code) (\(openCLErrorName(code))); the device was lost, reset or ran out of resources. Check the driver (`vggtl devices`), then resume, or use the CPU"
        case let .unreadableImages(files, reasons):
            let first = zip(files, reasons).prefix(3).map { "\($0): \($1)" }.joined(separator: "; ")
            return "\(files.count) image\(files.count == 1 ? "" : "s") cannot be read (\(first)\(files.count > 3 ? "; ..." : "")); fix or remove \(files.count == 1 ? "it" : "them"), or skip unreadable images with a warning instead of stopping"
        case let .runStopped(cause, kept):
            let keep = kept.map { "; \($0): fix the cause and resume the run to continue from it" } ?? "; no checkpoint had been written yet"
            return cause.description + keep
        case let .distributed(rank, size, reason):
            return "rank \(rank) of \(size): \(reason)"
        case let .earlyStoppingWithoutValidation(patience):
            return "early stopping (patience \(patience)) needs validation data to watch: give the session validation batches"
        case .restoreBestWithoutValidation:
            return "restoring the best weights needs validation data to choose them by: give the session validation batches"
        case let .nothingToResume(folder):
            return "\(folder) has no last.json to resume from; start a new run instead"
        case let .runExists(folder):
            return "\(folder) already holds a run; resume it or choose another run folder"
        case let .resumedClassesDiffer(folder, saved, now):
            return "the run in \(folder) was trained on \(saved.count) classes \(saved), the data now has \(now.count) classes \(now); "
                + "resume with the same data, or start a new run in another folder"
        case let .resumeRefused(folder, changes):
            return "the run in \(folder) cannot continue with another \(changes.map(\.description).joined(separator: ", ")): "
                + "resume it as it was trained, or start a new run in another folder"
        case let .folderInUse(folder, lockFile, holder):
            return "\(folder) is in use by \(holder); wait for it to finish or choose another folder "
                + "(if that process no longer runs, delete \(lockFile))"
        case let .verificationFailed(device, failing, checked, worst):
            return "verification: on the first batch \(device) differs from the CPU by more than float32 rounding explains in "
                + "\(failing) of \(checked) tensors: \(worst). Its report lists every tensor; train on the CPU if the device's results cannot be trusted"
        case let .headDoesNotFit(file, details):
            return "the head in \(file) does not fit this task (\(details)); let the head start fresh instead"
        case let .topModelClassesDiffer(folder, trained, now):
            return "the top model \(folder) was trained on \(trained.count) classes \(trained), the data has \(now.count) classes \(now); the class folders must match"
        case let .topModelHeadDiffers(folder, changes):
            return "the head asked for differs from the top model \(folder) in its \(changes.map(\.description).joined(separator: ", ")); build the top model's head"
        case let .classWeights(source, reason):
            return "class weights \(source): \(reason)"
        }
    }
}

package func mib(_ bytes: Int) -> String {
    let m = Double(bytes) / 1_048_576
    return m >= 1024 ? String(format: "%.1f GiB", m / 1024) : String(format: "%.1f MiB", m)
}

/// "[3,3,3,64]": shapes as the weights errors print them.
package func compactShape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ",") + "]" }

/// The first few items of a long list, then how many more.
package func listSome(_ items: [String], limit: Int = 8) -> String {
    items.count <= limit ? items.joined(separator: ", ")
        : items.prefix(limit).joined(separator: ", ") + " and \(items.count - limit) more"
}

package func openCLErrorName(_ code: Int32) -> String {
    switch code {
    case -1: return "CL_DEVICE_NOT_FOUND"
    case -2: return "CL_DEVICE_NOT_AVAILABLE"
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE"
    case -5: return "CL_OUT_OF_RESOURCES"
    case -6: return "CL_OUT_OF_HOST_MEMORY"
    case -11: return "CL_BUILD_PROGRAM_FAILURE"
    case -30: return "CL_INVALID_VALUE"
    case -36: return "CL_INVALID_COMMAND_QUEUE"
    case -38: return "CL_INVALID_MEM_OBJECT"
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE"
    case -46: return "CL_INVALID_KERNEL_NAME"
    case -48: return "CL_INVALID_KERNEL"
    case -51: return "CL_INVALID_ARG_SIZE"
    case -52: return "CL_INVALID_KERNEL_ARGS"
    case -54: return "CL_INVALID_WORK_GROUP_SIZE"
    case -61: return "CL_INVALID_BUFFER_SIZE"
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)"
    default: return code < -1000 ? "CLBlast status" : "see CL/cl.h"
    }
}

import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain
import VGGTLIO

/// `DIR` (class folders), `cifar10:DIR` or `fashion-mnist:DIR` (DIR optional: Debian's package path).
enum DataSpec {
    case folder(URL)
    case cifar10(URL)
    case fashionMNIST(URL)

    init(parsing text: String, flag: String) throws {
        if text.hasPrefix("cifar10:") {
            self = .cifar10(URL(fileURLWithPath: String(text.dropFirst(8))))
        } else if text == "fashion-mnist" || text.hasPrefix("fashion-mnist:") {
            let dir = text.dropFirst("fashion-mnist".count).drop { $0 == ":" }
            self = .fashionMNIST(URL(fileURLWithPath: dir.isEmpty ? "/usr/share/datasets/fashion-mnist" : String(dir)))
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: text, isDirectory: &isDir), isDir.boolValue else {
                throw VGGTLError.badFlag(flag: flag, value: text, expected: "a folder with one subfolder per class, cifar10:DIR or fashion-mnist[:DIR]")
            }
            self = .folder(URL(fileURLWithPath: text))
        }
    }

    /// Training images and, for the built-in datasets, their test split.
    func load() throws -> (train: ImageSource, test: ImageSource?) {
        switch self {
        case .folder(let u): return (try ClassFolderSource(directory: u), nil)
        case .cifar10(let u): let s = try CIFAR10.load(directory: u); return (s.train, s.test)
        case .fashionMNIST(let u): let s = try IDX.loadFashionMNIST(directory: u); return (s.train, s.test)
        }
    }

    /// The split that evaluation uses: a folder as it is, a built-in dataset's test split.
    func evaluationSource() throws -> ImageSource {
        let s = try load()
        return s.test ?? s.train
    }
}

/// A `--data`/`--val` folder of class subfolders; the error names the flag.
func classFolders(_ path: String, flag: String) throws -> ClassFolderSource {
    guard case .folder(let url) = try DataSpec(parsing: path, flag: flag) else {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a folder with one subfolder per class")
    }
    return try ClassFolderSource(directory: url)
}

/// Takes the --out folder of a command for as long as it runs (`FolderLock`; under mpirun rank
/// 0 takes it for the job): another command into it stops, naming this one. The caller
/// releases it when done; the kernel does if the process dies.
func takeOutFolder(_ path: String) throws -> FolderLock? {
    Job.isPrimary ? try FolderLock(URL(fileURLWithPath: path)) : nil
}

/// Fails before any work when a folder cannot be created or written.
func checkWritable(_ path: String, flag: String) throws {
    let url = URL(fileURLWithPath: path)
    do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a folder that can be created and written")
    }
    guard FileManager.default.isWritableFile(atPath: url.path) else {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a writable folder")
    }
}

/// Help texts that list the backbones, from the registry.
enum BackboneHelp {
    /// `--weights`: where ImageNet weights exist, and the torchvision state dicts that load.
    static var weights: String {
        "The pretrained trunk: imagenet (Keras' file for \(ImageNetWeights.trunks.map(\.rawValue).joined(separator: ", "))) "
            + "| none (random: what the architecture alone gives) | a .h5/.safetensors file "
            + "(Keras, or torchvision \(Backbones.all.compactMap(\.torchvisionModel).joined(separator: "/"))) "
            + "| a run folder (its trunk, size, preprocessing)."
    }
    /// The trunks with torch names: "vgg16, vgg16-bn, resnet50-torchvision and inceptionv3-torchvision".
    static var torchNamed: String { Backbones.list(Backbones.all.filter { $0.torchNaming != nil }.map(\.trunk.rawValue)) }
    /// `--unfreeze`'s default per family: "block5, conv5 or mixed9".
    static var defaultUnfreeze: String { Backbones.list(Backbones.families.map(\.defaultUnfreeze.description), last: "or") }
    /// `--pooling`'s default per family: "flatten for VGG16, gap for ResNet50 and InceptionV3".
    static var defaultPooling: String {
        var order: [ModelConfig.Pooling] = [], titles: [ModelConfig.Pooling: [String]] = [:]
        for b in Backbones.families {
            if titles[b.defaultPooling] == nil { order.append(b.defaultPooling) }
            titles[b.defaultPooling, default: []].append(b.family.title)
        }
        return order.map { "\($0.rawValue) for \(Backbones.list(titles[$0]!))" }.joined(separator: ", ")
    }
}

/// `--unfreeze SPEC` or `--freeze-first N` (Keras' `model.layers[:N]`), not both.
func parseUnfreeze(_ unfreeze: String?, freezeFirst: Int?, default spec: UnfreezeSpec) throws -> UnfreezeSpec {
    if let n = freezeFirst {
        guard unfreeze == nil else { throw VGGTLError.invalidArgument("use either --unfreeze or --freeze-first, not both") }
        guard n >= 0 else { throw VGGTLError.badFlag(flag: "--freeze-first", value: "\(n)", expected: "a number of layers N >= 0") }
        return .freezeFirst(n)
    }
    return try unfreeze.map(UnfreezeSpec.init(parsing:)) ?? spec
}

/// A line on stderr, after what stdout holds so far: piped output keeps its order.
func stderr(_ s: String) { writeStandardError(s + "\n") }

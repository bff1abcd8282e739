import ArgumentParser
import Foundation
import VGGTL

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and convert weight files (Keras .h5, safetensors; Keras or PyTorch names).",
        subcommands: [Inspect.self, Convert.self])
    /// Accepted (not listed) so that `vggtl --threads 2 weights ...` works like the other
    /// commands; reading and converting files needs no device, seed or threads.
    @OptionGroup(visibility: .private) var global: GlobalOptions

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a weight file's tensors: shape, dtype and the VGG16 layer each maps to.")
        @Argument(help: "A Keras .h5 (save_weights, model.save or the Keras Applications download) or a .safetensors file.")
        var file: String

        func run() throws {
            let url = URL(fileURLWithPath: file)
            let summary = try WeightFile.describe(url)
            let names = summary.entries.map(\.name)
            let torch = TorchVGG16.looksLikeTorch(names: names)
            var targets: [String: (name: String, shape: [Int])] = [:]
            if torch {
                targets = try TorchVGG16.kerasTargets(for: summary.entries.map { ($0.name, $0.shape) }, file: url.path)
            } else {
                for e in summary.entries { targets[e.name] = (e.name, e.shape) }
            }
            let legacy = summary.entries.contains { !$0.storedName.contains("/") && $0.storedName.hasSuffix(":0") }
            let naming = torch ? "PyTorch (\(TorchVGG16.variant(names: names))), mapped to Keras layers by position"
                : summary.format == .h5 ? (legacy ? "Keras, Keras 1 names (block1_conv1_W_1:0, as the Keras Applications download)" : "Keras")
                : "Keras"
            print("file     \(url.path)")
            print("format   \(summary.format == .h5 ? "Keras HDF5" : "safetensors")")
            print("naming   \(naming)")
            for (k, v) in summary.metadata.sorted(by: { $0.key < $1.key }) { print("meta     \(k) = \(v)") }
            print("")
            let rows: [[String]] = summary.entries.map { e in
                [e.storedName, wShape(e.shape), e.dtype, mapping(targets[e.name], torch: torch, storedShape: e.shape)]
            }
            let header = ["tensor", "shape", "dtype", "VGG16 layer"]
            let widths = (0..<4).map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
            func line(_ r: [String]) -> String {
                r.enumerated().map { $1.padding(toLength: $0 == 3 ? $1.count : widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            }
            print(line(header))
            print(String(repeating: "-", count: widths.reduce(6, +)))
            rows.forEach { print(line($0)) }
            let params = summary.entries.reduce(0) { $0 + $1.shape.reduce(1, *) }
            let mapped = summary.entries.filter { e in targets[e.name].map { VGG16Layout.expectedShape(of: $0.name) == $0.shape } ?? false }.count
            print("")
            print("\(summary.entries.count) tensors, \(wGrouped(params)) parameters; \(mapped) match VGG16's names and shapes "
                  + "(VGG16 has \(wGrouped(VGG16Layout.parameterCount(includeTop: false))) without the top, \(wGrouped(VGG16Layout.parameterCount(includeTop: true))) with it)")
        }

        func mapping(_ target: (name: String, shape: [Int])?, torch: Bool, storedShape: [Int]) -> String {
            guard let target else { return torch ? "skipped" : "unmapped" }
            let layer = target.name.split(separator: "/").first.map(String.init) ?? target.name
            let weight = target.name.split(separator: "/").dropFirst().joined(separator: "/")
            let note = torch && target.shape != storedShape ? " as \(wShape(target.shape))" : ""
            if let expected = VGG16Layout.expectedShape(of: target.name) {
                return expected == target.shape ? "\(layer) \(weight)\(note)" : "\(layer) \(weight)\(note), but VGG16 has \(wShape(expected))"
            }
            if layer.contains("_bn") { return "\(layer) \(weight) (batch norm)\(note)" }
            return "unmapped (\(target.name)\(note))"
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert between Keras .h5 and safetensors, and between Keras and PyTorch (torchvision) names; the preprocessing, trunk and input size travel in the output's metadata.")
        @Argument(help: "Input weights (.h5 or .safetensors, detected from the content), or a run folder (its model's weights).")
        var input: String
        @Argument(help: "Output file.")
        var output: String
        @Option(help: "h5 | safetensors (default: from OUT's extension).")
        var format: String?
        @Option(help: "keras | torch (default: keras for h5; for safetensors the input's naming).")
        var naming: String?
        @Option(help: "Record this preprocessing (caffe | torch | rescale) in the output. (default: the input's: its metadata, the run's, else torch for PyTorch names, caffe for Keras names)")
        var preprocess: String?
        @Option(help: "Record this input size HxW in the output. (default: the input's metadata or the run's, else none)")
        var size: String?

        func validate() throws {
            if let preprocess { let _: Preprocessing = try parseEnum(preprocess, flag: "--preprocess") }
            if let size { _ = try parseSize(size) }
        }

        func run() throws {
            let outURL = URL(fileURLWithPath: output)
            let fmt: WeightFormat
            if let format {
                guard let f = WeightFormat(rawValue: format) else { throw VGGTLError.badFlag(flag: "--format", value: format, expected: "h5 or safetensors") }
                fmt = f
            } else {
                guard let f = WeightFormat(pathExtension: outURL.pathExtension) else {
                    throw VGGTLError.badFlag(flag: "--format", value: "(from '\(outURL.lastPathComponent)')", expected: "h5 or safetensors, or an output ending in .h5 or .safetensors")
                }
                fmt = f
            }
            if let naming, naming != "keras", naming != "torch" {
                throw VGGTLError.badFlag(flag: "--naming", value: naming, expected: "keras or torch")
            }
            let choice = try WeightsChoice(input)
            guard var set = try choice.load() else { throw VGGTLError.badFlag(flag: "INPUT", value: input, expected: "a weights file or a run folder") }
            let isTorch = TorchVGG16.looksLikeTorch(set)
            // What the weights expect travels with them (vggtl reads it back as the defaults).
            set.metadata[WeightMetadata.preprocessing] = try preprocess.map { (try parseEnum($0, flag: "--preprocess") as Preprocessing).rawValue }
                ?? choice.preprocessing.rawValue
            set.metadata[WeightMetadata.trunk] = (choice.batchNorm ? ModelConfig.Trunk.vgg16BN : .vgg16).rawValue
            if let (h, w) = try size.map({ try parseSize($0) }) ?? choice.inputSize { set.metadata[WeightMetadata.inputSize] = "\(h)x\(w)" }
            let target = naming ?? (fmt == .h5 ? "keras" : (isTorch ? "torch" : "keras"))
            if target == "torch", fmt == .h5 {
                throw VGGTLError.badFlag(flag: "--naming", value: "torch", expected: "keras for an .h5 output (Keras files need Keras layer names)")
            }
            if target == "keras", isTorch { set = try TorchVGG16.toKeras(set) }
            if target == "torch", !isTorch { set = try TorchVGG16.fromKeras(set) }
            try WeightFile.save(set, to: outURL, format: fmt)
            let meta = [WeightMetadata.trunk, WeightMetadata.preprocessing, WeightMetadata.inputSize].compactMap { k in set.metadata[k].map { "\(k)=\($0)" } }
            print("wrote \(outURL.path): \(fmt == .h5 ? "Keras HDF5" : "safetensors"), \(target) names, \(set.tensors.count) tensors, \(wGrouped(set.parameterCount)) parameters; \(meta.joined(separator: ", "))")
        }
    }
}

func wShape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

func wGrouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() { if i > 0, i % 3 == 0 { out.append(",") }; out.append(c) }
    return String(out.reversed())
}

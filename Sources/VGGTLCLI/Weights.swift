import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLData
import VGGTLIO
import VGGTLModels

struct Weights: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and convert weight files (Keras .h5, safetensors; Keras or PyTorch names; VGG16, ResNet50, InceptionV3).",
        subcommands: [Inspect.self, Convert.self])
    /// Accepted (not listed) so that `vggtl --threads 2 weights ...` works like the other
    /// commands; reading and converting files needs no device, seed or threads.
    @OptionGroup(visibility: .private) var global: GlobalOptions

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a weight file's tensors: shape, dtype, which backbone the file holds and the layer each tensor maps to.")
        @Argument(help: "A Keras .h5 (save_weights, model.save or the Keras Applications download) or a .safetensors file.")
        var file: String

        func run() throws {
            let url = URL(fileURLWithPath: file)
            let summary = try WeightFile.describe(url)
            let names = summary.entries.map(\.name)
            let torch = TorchNames.looksLikeTorch(names: names)
            // The backbone the names say (VGG16 when they say nothing: the one-model default).
            let trunk = Backbones.trunk(names: names, metadata: summary.metadata) ?? .vgg16
            let backbone = trunk.backbone!
            // Weights are allocated to list them: the CPU is always there and needs no kernels.
            let layout = try backbone.weightLayout(on: DeviceChoice.cpu.open())
            var expected: [String: [Int]] = [:]
            for l in layout { for w in l.weights { expected[w.name] = w.shape } }
            var targets: [String: (name: String, shape: [Int])] = [:]
            if torch {
                targets = try TorchNames.kerasTargets(for: summary.entries.map { ($0.name, $0.shape) }, file: url.path, metadata: summary.metadata)
            } else {
                for e in summary.entries { targets[e.name] = (e.name, e.shape) }
            }
            let trunkLayers = layout.filter(\.trunk)
            let trunkByName = trunkLayers.allSatisfy { $0.weights.allSatisfy { w in targets.values.contains { $0.name == w.name } } }
            // Keras names that are not ours (the official InceptionV3 file's conv2d_1 ...): paired by
            // order with the backbone's layers, as Keras' load_weights and vggtl's loading do.
            var byOrder = false
            if !torch, !trunkByName, names.contains(where: { expected[$0] == nil }) {
                var fileLayers: [String] = []
                for n in names where !fileLayers.contains(layerName(n)) { fileLayers.append(layerName(n)) }
                if fileLayers.count <= layout.count, fileLayers.count >= layout.filter(\.trunk).count {
                    byOrder = true
                    let ours = Dictionary(uniqueKeysWithValues: zip(fileLayers, layout.map(\.layer)))
                    for e in summary.entries {
                        let l = layerName(e.name)
                        targets[e.name] = ("\(ours[l]!)/\(e.name.dropFirst(l.count + 1))", e.shape)
                    }
                }
            }
            // With the trunk found by name, layers on it that are not Keras' top as the backbone has
            // it are a head of the file's own (vggtl's dense and predictions, a tutorial's head).
            var head: [String] = []
            if trunkByName {
                let trunkNames = Set(trunkLayers.map(\.layer))
                for e in summary.entries {
                    guard let t = targets[e.name] else { continue }
                    let layer = layerName(t.name)
                    guard !trunkNames.contains(layer), !head.contains(layer) else { continue }
                    let own = summary.entries.compactMap { targets[$0.name] }.filter { layerName($0.name) == layer }
                    if !own.allSatisfy({ expected[$0.name] == $0.shape }) { head.append(layer) }
                }
            }
            let legacy = summary.entries.contains { !$0.storedName.contains("/") && $0.storedName.hasSuffix(":0") }
            let naming = torch ? "PyTorch (\(TorchNames.variant(names: names))), mapped to Keras layers"
                : summary.format == .h5 ? (legacy ? "Keras, Keras 1 names (block1_conv1_W_1:0, as the Keras Applications download)" : "Keras")
                : "Keras"
            print("file     \(url.path)")
            print("format   \(summary.format == .h5 ? "Keras HDF5" : "safetensors")")
            print("naming   \(naming)" + (byOrder ? "; layer names not ours, paired by order (as Keras' load_weights)" : ""))
            for (k, v) in summary.metadata.sorted(by: { $0.key < $1.key }) { print("meta     \(k) = \(v)") }
            print("")
            let rows: [[String]] = summary.entries.map { e in
                [e.storedName, wShape(e.shape), e.dtype, mapping(targets[e.name], expected: expected, torch: torch, storedShape: e.shape, model: backbone.title, head: head)]
            }
            let header = ["tensor", "shape", "dtype", "\(backbone.title) layer"]
            let widths = (0..<4).map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
            func line(_ r: [String]) -> String {
                r.enumerated().map { $1.padding(toLength: $0 == 3 ? $1.count : widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            }
            print(line(header))
            print(String(repeating: "-", count: widths.reduce(6, +)))
            rows.forEach { print(line($0)) }
            let params = summary.entries.reduce(0) { $0 + $1.shape.reduce(1, *) }
            let mapped = summary.entries.filter { e in targets[e.name].map { expected[$0.name] == $0.shape } ?? false }.count
            let trunkCount = layout.filter(\.trunk).reduce(0) { $0 + $1.weights.count }
            let trunkNames = Set(layout.filter(\.trunk).flatMap { $0.weights.map(\.name) })
            let matchedTrunk = Set(summary.entries.compactMap { e in targets[e.name].flatMap { expected[$0.name] == $0.shape && trunkNames.contains($0.name) ? $0.name : nil } })
            let params0 = layout.filter(\.trunk).reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.shape.reduce(1, *) } }
            let params1 = layout.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.shape.reduce(1, *) } }
            print("")
            let verdict = matchedTrunk.count == trunkCount
                ? "backbone \(backbone.title) (--model \(trunk.rawValue)): every trunk tensor found" + (mapped > trunkCount ? ", with Keras' top" : "")
                    + (head.isEmpty ? "" : "\(mapped > trunkCount ? " and" : ", with") a head of its own (\(head.joined(separator: ", ")))")
                : "backbone: not a complete \(backbone.title) (\(matchedTrunk.count) of its \(trunkCount) trunk tensors found)"
            print(verdict)
            print("\(summary.entries.count) tensors, \(wGrouped(params)) parameters; \(mapped) match \(backbone.title)'s names and shapes "
                  + "(\(backbone.title) has \(wGrouped(params0)) without the top, \(wGrouped(params1)) with it)")
        }

        func layerName(_ tensor: String) -> String { tensor.firstIndex(of: "/").map { String(tensor[..<$0]) } ?? tensor }

        func mapping(_ target: (name: String, shape: [Int])?, expected: [String: [Int]], torch: Bool, storedShape: [Int], model: String, head: [String]) -> String {
            guard let target else { return torch ? "skipped" : "unmapped" }
            let layer = layerName(target.name)
            let weight = target.name.split(separator: "/").dropFirst().joined(separator: "/")
            let note = torch && target.shape != storedShape ? " as \(wShape(target.shape))" : ""
            if head.contains(layer) { return "head \(layer) \(weight)\(note)" }
            if let e = expected[target.name] {
                return e == target.shape ? "\(layer) \(weight)\(note)" : "\(layer) \(weight)\(note), but \(model) has \(wShape(e))"
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
        @Option(help: "Output format. (default: from OUT's extension)")
        var format: WeightFormat?
        @Option(help: "Tensor names; torch names exist for \(BackboneHelp.torchNamed) weights. (default: keras for h5; for safetensors the input's naming)")
        var naming: Naming?
        @Option(help: "Record this preprocessing in the output. (default: the input's: its metadata, the run's, else the backbone's: tf for InceptionV3, torch for PyTorch names and torchvision ResNet50, caffe for Keras VGG16/ResNet50)")
        var preprocess: Preprocessing?
        @Option(help: "Record this input size HxW in the output. (default: the input's metadata or the run's, else ResNet50's 224 and InceptionV3's 299; none for VGG16)")
        var size: String?

        func validate() throws {
            if let size { _ = try parseSize(size) }
        }

        func run() throws {
            let outURL = URL(fileURLWithPath: output)
            let fmt: WeightFormat
            if let format {
                fmt = format
            } else {
                guard let f = WeightFormat(pathExtension: outURL.pathExtension) else {
                    throw VGGTLError.badFlag(flag: "--format", value: "(from '\(outURL.lastPathComponent)')", expected: "h5 or safetensors, or an output ending in .h5 or .safetensors")
                }
                fmt = f
            }
            let choice = try WeightsChoice(input)
            guard var set = try choice.load() else { throw VGGTLError.badFlag(flag: "INPUT", value: input, expected: "a weights file or a run folder") }
            let isTorch = TorchNames.looksLikeTorch(set)
            let trunk = choice.weightsTrunk ?? .vgg16
            // What the weights expect travels with them (vggtl reads it back as the defaults).
            set.metadata[WeightMetadata.preprocessing] = (preprocess ?? choice.preprocessing).rawValue
            set.metadata[WeightMetadata.trunk] = trunk.rawValue
            if let model = choice.run?.model {
                set.metadata[WeightMetadata.predictions] = model.multiLabel ? "sigmoid-multi-label" : model.outputUnits == 1 ? "sigmoid" : "softmax"
            }
            // ResNet50 and InceptionV3 weights were trained at 224 and 299: that size travels with them.
            let backboneSize = trunk.backbone?.weightsInputSize.map { ($0, $0) }
            if let (h, w) = try size.map({ try parseSize($0) }) ?? choice.inputSize ?? backboneSize { set.metadata[WeightMetadata.inputSize] = "\(h)x\(w)" }
            let target = naming?.rawValue ?? (fmt == .h5 ? "keras" : (isTorch ? "torch" : "keras"))
            if target == "torch", fmt == .h5 {
                throw VGGTLError.badFlag(flag: "--naming", value: "torch", expected: "keras for an .h5 output (Keras files need Keras layer names)")
            }
            if target == "keras", isTorch { set = try TorchNames.toKeras(set) }
            if target == "torch", !isTorch { set = try TorchNames.fromKeras(set, trunk: trunk) }
            try WeightFile.save(set, to: outURL, format: fmt)
            let meta = [WeightMetadata.trunk, WeightMetadata.preprocessing, WeightMetadata.inputSize, WeightMetadata.predictions].compactMap { k in set.metadata[k].map { "\(k)=\($0)" } }
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

import VGGTLIO

/// The backbones vggtl builds, in the order `--model` lists them. A new family lives in its own
/// folder under Backbones/ and adds its variants here, in one line.
public enum Backbones {
    public static let all: [any Backbone] = VGG16.variants + ResNet50.variants + InceptionV3.variants + MobileNetV2.variants

    /// The backbone of a trunk; nil for `.none` (a head on saved features).
    public static func of(_ trunk: ModelConfig.Trunk) -> (any Backbone)? { all.first { $0.trunk == trunk } }

    /// What `--model` names, in order.
    public static var names: [String] { all.map(\.trunk.rawValue) }

    /// The backbone of the tutorials and of a model nothing else decides (VGG16).
    public static var `default`: any Backbone { all[0] }

    /// One backbone per family, the one named after it (vgg16, resnet50, inceptionv3), in order.
    public static var families: [any Backbone] { all.filter(\.letsWeightsChoose) }

    /// Every stage name of every backbone (what `--unfreeze` accepts before a model is known).
    public static var allStages: Set<String> { Set(all.flatMap(\.stages)) }

    /// The trunk a file's tensors belong to: its vggtl metadata, else its names, as each family
    /// recognises them (PyTorch names first, then Keras names). nil when no family knows them.
    public static func trunk(names: [String], metadata: [String: String] = [:]) -> ModelConfig.Trunk? {
        if let m = metadata[WeightMetadata.trunk], let t = ModelConfig.Trunk(rawValue: m), t != .none { return t }
        if let t = TorchNames.trunk(names: names) { return t }
        return all.lazy.compactMap { $0.trunk(ofKerasNames: names) }.first
    }

    /// "a, b and c" (`last` joins the last two).
    public static func list(_ items: [String], last: String = "and") -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " \(last) " + items.last!
    }
}

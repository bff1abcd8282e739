import Foundation

/// Which backbone a weights file holds, and the Keras names and shapes each backbone has: for
/// choosing the trunk a file describes (`--model resnet50` with torchvision weights builds the
/// v1.5 trunk) and for `vggtl weights inspect`.
public enum BackboneWeights {
    /// The trunk of a file's tensors: its vggtl metadata, else its names. torch names say it
    /// directly; Keras names tell VGG16 (block1_conv1) from ResNet50 (conv1_conv: Keras' with
    /// convolution biases, torchvision's without) and InceptionV3 (conv2d_N: Keras' BatchNorm has
    /// no gamma, torchvision's has). nil when the names are none of these.
    public static func trunk(names: [String], metadata: [String: String] = [:]) -> ModelConfig.Trunk? {
        if let m = metadata[WeightMetadata.trunk], let t = ModelConfig.Trunk(rawValue: m), t != .none { return t }
        if let t = TorchNames.trunk(names: names) { return t }
        let layers = Set(names.map(layerName(of:)))
        let all = Set(names)
        if layers.contains("block1_conv1") { return WeightSet.hasBatchNorm(names: names) ? .vgg16BN : .vgg16 }
        if let conv = ["conv1_conv", "conv2_block1_1_conv", "conv5_block3_3_conv"].first(where: layers.contains) {
            return all.contains("\(conv)/bias") ? .resnet50 : .resnet50Torchvision
        }
        let bns = all.filter { $0.hasPrefix("batch_normalization") && $0.hasSuffix("/beta") }
        if layers.contains(where: { $0.hasPrefix("conv2d") }), !bns.isEmpty {
            let withGamma = bns.contains { all.contains(layerName(of: $0) + "/gamma") }
            return withGamma ? .inceptionV3Torchvision : .inceptionV3
        }
        return nil
    }

    /// The weighted layers of a backbone with Keras' top (include_top=True, 1000 classes), in
    /// Keras' model.layers order, with our names and Keras shapes; `trunk` says which are the
    /// trunk's (the rest are the top). Built from the model itself, so it cannot drift from it.
    public static func layout(of trunk: ModelConfig.Trunk) throws -> [(layer: String, trunk: Bool, weights: [(name: String, shape: [Int])])] {
        guard let backbone = Backbone.of(trunk) else { return [] }
        // Weight shapes do not depend on the input size, except VGG16's fc1 (at 224: 7x7x512 inputs),
        // which comes from VGG16Layout rather than a 138M-parameter model.
        let vgg = backbone.topIsVGG
        let side = backbone.minimumSize
        let model = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], includeTop: !vgg, headHidden: 0, classes: 1000),
                              on: try CPUDevice(), seed: 0)
        let layers = model.kerasOrderedLayers.filter { !$0.weights.isEmpty && (!vgg || model.isTrunk($0)) }.map { layer in
            (layer: layer.name, trunk: model.isTrunk(layer), weights: layer.weights.map { (name: $0.name, shape: $0.tensor.shape) })
        }
        let top = vgg ? VGG16Layout.keras.dropFirst(13).map { (layer: $0.layer, trunk: false, weights: $0.weights.map { (name: $0.0, shape: $0.1) }) } : []
        return layers + top
    }
}

/// VGG16 as Keras builds it: 13 3x3 convolutions in 5 blocks, each block ending in 2x2 max
/// pooling, named block1_conv1 ... block5_pool; optionally BatchNorm after every convolution
/// (block1_bn1, then block1_relu1: the names PyTorch vgg16_bn weights map to), as people train
/// it from scratch on CIFAR-10. A chain: each block is a stage (block1 ... block5).
public enum VGG16 {
    /// Filters per block and convolutions per block.
    public static let blocks: [(filters: Int, convs: Int)] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]

    /// The trunk's layers in order (include_top=False): input (h, w, c) -> (h/32, w/32, 512).
    public static func trunk(batchNorm: Bool, inputChannels: Int = 3, batchNormMomentum: Float = 0.9,
                             on device: Device, rng: inout SeededGenerator) throws -> [Layer] {
        let g = Graph()
        var b = TrunkBuilder(graph: g, device: device, seed: rng, batchNormMomentum: batchNormMomentum, inputChannels: inputChannels)
        try build(&b, batchNorm: batchNorm)
        rng = b.rng
        return g.layers
    }

    static func build(_ b: inout TrunkBuilder, batchNorm: Bool) throws {
        var x = b.graph.output
        for (k, block) in blocks.enumerated() {
            b.stage = "block\(k + 1)"
            for i in 1...block.convs {
                let conv = try Conv2D("block\(k + 1)_conv\(i)", inChannels: b.channels(x), filters: block.filters,
                                      activation: batchNorm ? .linear : .relu, on: b.device, rng: &b.rng)
                x = b.add(conv, [x], channels: block.filters)
                if batchNorm {
                    let bn = try BatchNormalization("block\(k + 1)_bn\(i)", channels: block.filters, momentum: b.batchNormMomentum, on: b.device)
                    x = b.add(bn, [x], channels: block.filters)
                    x = b.relu("block\(k + 1)_relu\(i)", x)
                }
            }
            x = b.layer(Pool2D("block\(k + 1)_pool", .max), x)
        }
    }

    /// Which block (1...5) a trunk layer belongs to, or nil for head layers.
    public static func block(of layerName: String) -> Int? {
        guard layerName.hasPrefix("block"), let digit = layerName.dropFirst(5).first, let b = Int(String(digit)) else { return nil }
        return b
    }
}

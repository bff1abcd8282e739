/// VGG16's weights as Keras names and shapes them (HWIO kernels, (in, out) dense kernels) at
/// 224x224, without building a model: for checking files.
public enum VGG16Layout {
    /// Convolutions per block.
    public static let blocks = VGG16.blocks.map(\.convs)
    /// Output channels per block.
    public static let channels = VGG16.blocks.map(\.filters)

    /// The 13 convolutions, then fc1 (25088, 4096), fc2 (4096, 4096), predictions (4096, 1000).
    public static let keras: [(layer: String, weights: [(String, [Int])])] = {
        var out: [(layer: String, weights: [(String, [Int])])] = []
        var inChannels = 3
        for (b, n) in blocks.enumerated() {
            for c in 1...n {
                let name = "block\(b + 1)_conv\(c)", outChannels = channels[b]
                out.append((name, [("\(name)/kernel", [3, 3, inChannels, outChannels]), ("\(name)/bias", [outChannels])]))
                inChannels = outChannels
            }
        }
        for (name, i, o) in [("fc1", 7 * 7 * 512, 4096), ("fc2", 4096, 4096), ("predictions", 4096, 1000)] {
            out.append((name, [("\(name)/kernel", [i, o]), ("\(name)/bias", [o])]))
        }
        return out
    }()

    /// The layers of the notop trunk (include_top=False).
    public static var notop: [(layer: String, weights: [(String, [Int])])] { Array(keras.prefix(13)) }

    /// 14,714,688 for the trunk, 138,357,544 with the top.
    public static func parameterCount(includeTop: Bool) -> Int {
        (includeTop ? keras : notop).reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.1.reduce(1, *) } }
    }

    /// The shape VGG16 has for a weight ("block1_conv1/kernel" -> [3, 3, 3, 64]), nil when it has no such weight.
    public static func expectedShape(of name: String) -> [Int]? {
        for l in keras { for (n, s) in l.weights where n == name { return s } }
        return nil
    }
}

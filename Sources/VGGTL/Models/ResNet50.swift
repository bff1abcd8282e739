/// ResNet50 with Keras' layer names (keras.applications.ResNet50): conv1_pad, conv1_conv,
/// conv1_bn, conv1_relu, pool1_pad, pool1_pool, then 16 bottleneck blocks in stages conv2...conv5
/// (3, 4, 6, 3 blocks) named convS_blockB_{0,1,2,3}_{conv,bn}, _{1,2}_relu, _add, _out.
///
/// Two architectures, as the weight files describe them:
/// - Keras (ResNet v1): the first block of a stage strides its first 1x1 convolution (and the
///   shortcut); convolutions have biases; BatchNorm epsilon 1.001e-5.
/// - torchvision (v1.5): the stride is on the 3x3 convolution, with PyTorch's symmetric
///   padding 1; no convolution biases; BatchNorm epsilon 1e-5. The same layer list and names
///   (conv1_pad/pool1_pad stand for torchvision's conv padding 3 and max-pool padding 1: the
///   pool follows a ReLU, so zero padding equals PyTorch's ignored padding).
public enum ResNet50 {
    /// Blocks and bottleneck width per stage conv2...conv5.
    public static let stages: [(blocks: Int, filters: Int)] = [(3, 64), (4, 128), (6, 256), (3, 512)]

    static func build(_ b: inout TrunkBuilder, torchvision: Bool) throws {
        let bias = !torchvision
        let eps: Float = torchvision ? 1e-5 : 1.001e-5
        b.stage = "conv1"
        var x = b.layer(ZeroPadding2D("conv1_pad", 3), b.graph.output)
        x = try b.conv("conv1_conv", x, filters: 64, kernel: (7, 7), strides: (2, 2), padding: .valid, useBias: bias)
        x = try b.batchNorm("conv1_bn", x, epsilon: eps)
        x = b.relu("conv1_relu", x)
        x = b.layer(ZeroPadding2D("pool1_pad", 1), x)
        x = b.layer(Pool2D("pool1_pool", .max, poolSize: (3, 3), strides: (2, 2)), x)
        for (s, stage) in stages.enumerated() {
            b.stage = "conv\(s + 2)"
            for k in 1...stage.blocks {
                let stride = k == 1 && s > 0 ? 2 : 1
                x = try block(&b, x, name: "conv\(s + 2)_block\(k)", filters: stage.filters, stride: stride,
                              convShortcut: k == 1, torchvision: torchvision, bias: bias, eps: eps)
            }
        }
    }

    /// Keras' block1: [1x1 conv -> BN] shortcut (first block of a stage), 1x1 -> 3x3 -> 1x1
    /// convolutions with BN (and ReLU after the first two), Add, ReLU.
    static func block(_ b: inout TrunkBuilder, _ x: Graph.Node, name: String, filters: Int, stride: Int,
                      convShortcut: Bool, torchvision: Bool, bias: Bool, eps: Float) throws -> Graph.Node {
        var shortcut = x
        if convShortcut {
            shortcut = try b.conv("\(name)_0_conv", x, filters: 4 * filters, kernel: (1, 1), strides: (stride, stride), padding: .valid, useBias: bias)
            shortcut = try b.batchNorm("\(name)_0_bn", shortcut, epsilon: eps)
        }
        let s1 = torchvision ? 1 : stride, s2 = torchvision ? stride : 1
        var y = try b.conv("\(name)_1_conv", x, filters: filters, kernel: (1, 1), strides: (s1, s1), padding: .valid, useBias: bias)
        y = try b.batchNorm("\(name)_1_bn", y, epsilon: eps)
        y = b.relu("\(name)_1_relu", y)
        y = try b.conv("\(name)_2_conv", y, filters: filters, kernel: (3, 3), strides: (s2, s2),
                       padding: torchvision ? .symmetric(1) : .same, useBias: bias)
        y = try b.batchNorm("\(name)_2_bn", y, epsilon: eps)
        y = b.relu("\(name)_2_relu", y)
        y = try b.conv("\(name)_3_conv", y, filters: 4 * filters, kernel: (1, 1), padding: .valid, useBias: bias)
        y = try b.batchNorm("\(name)_3_bn", y, epsilon: eps)
        let sum = b.add(Add("\(name)_add"), [shortcut, y], channels: 4 * filters)
        return b.relu("\(name)_out", sum)
    }
}

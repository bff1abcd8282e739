/// InceptionV3 as keras.applications.InceptionV3 builds it, layer for layer and in its creation
/// order, so that the automatic names are a fresh Keras session's: conv2d, conv2d_1, ...,
/// conv2d_93, batch_normalization..., activation..., max_pooling2d, average_pooling2d...,
/// concatenate, concatenate_1, and the named blocks mixed0 ... mixed10 (with mixed9_0, mixed9_1).
/// (The official weight file numbers its layers from conv2d_1: match it by order, not by name.)
///
/// Every convolution is Keras' conv2d_bn: Conv2D without bias, BatchNormalization, ReLU.
/// Two architectures, as the weight files describe them:
/// - Keras: BatchNorm without gamma (scale=False), epsilon 1e-3; 3x3 stride-1 'same' average
///   pools divide by the in-bounds pixels.
/// - torchvision (Inception3): BatchNorm with gamma, epsilon 1e-3; its average pools count the
///   padding (count_include_pad=True). Same branches in the same order, same names here.
public enum InceptionV3 {
    static func build(_ b: inout TrunkBuilder, torchvision: Bool) throws {
        var i = Inception(b: b, torchvision: torchvision)
        try i.build()
        b = i.b
    }
}

private struct Inception {
    var b: TrunkBuilder
    let torchvision: Bool

    /// Keras' conv2d_bn(x, filters, rows, cols, padding, strides).
    mutating func convBN(_ x: Graph.Node, _ filters: Int, _ rows: Int, _ cols: Int, padding: Padding = .same,
                         strides: Int = 1) throws -> Graph.Node {
        var y = try b.conv(b.autoName("conv2d"), x, filters: filters, kernel: (rows, cols), strides: (strides, strides),
                           padding: padding, useBias: false)
        y = try b.batchNorm(b.autoName("batch_normalization"), y, epsilon: 1e-3, scale: torchvision)
        return b.relu(b.autoName("activation"), y)
    }

    mutating func maxPool(_ x: Graph.Node) -> Graph.Node {
        b.layer(Pool2D(b.autoName("max_pooling2d"), .max, poolSize: (3, 3), strides: (2, 2)), x)
    }

    /// 3x3 stride-1 'same' average pooling: Keras excludes the padding, torchvision counts it.
    mutating func avgPool(_ x: Graph.Node) -> Graph.Node {
        b.layer(Pool2D(b.autoName("average_pooling2d"), .average, poolSize: (3, 3), strides: (1, 1),
                       padding: torchvision ? .symmetric(1) : .same, countPadding: torchvision), x)
    }

    mutating func concat(_ inputs: [Graph.Node], name: String? = nil) -> Graph.Node {
        let n = name ?? b.autoName("concatenate")
        return b.add(Concatenate(n), inputs, channels: inputs.reduce(0) { $0 + b.channels($1) })
    }

    mutating func build() throws {
        b.stage = "stem"
        var x = try convBN(b.graph.output, 32, 3, 3, padding: .valid, strides: 2)
        x = try convBN(x, 32, 3, 3, padding: .valid)
        x = try convBN(x, 64, 3, 3)
        x = maxPool(x)
        x = try convBN(x, 80, 1, 1, padding: .valid)
        x = try convBN(x, 192, 3, 3, padding: .valid)
        x = maxPool(x)

        // mixed 0, 1, 2: 35 x 35 x 256, 288, 288
        for (k, poolFilters) in [32, 64, 64].enumerated() {
            b.stage = "mixed\(k)"
            let branch1x1 = try convBN(x, 64, 1, 1)
            var branch5x5 = try convBN(x, 48, 1, 1)
            branch5x5 = try convBN(branch5x5, 64, 5, 5)
            var branch3x3dbl = try convBN(x, 64, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, poolFilters, 1, 1)
            x = concat([branch1x1, branch5x5, branch3x3dbl, branchPool], name: "mixed\(k)")
        }

        // mixed 3: 17 x 17 x 768
        b.stage = "mixed3"
        do {
            let branch3x3 = try convBN(x, 384, 3, 3, padding: .valid, strides: 2)
            var branch3x3dbl = try convBN(x, 64, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3, padding: .valid, strides: 2)
            let branchPool = maxPool(x)
            x = concat([branch3x3, branch3x3dbl, branchPool], name: "mixed3")
        }

        // mixed 4, 5, 6, 7: 17 x 17 x 768
        for (k, c7) in [128, 160, 160, 192].enumerated() {
            b.stage = "mixed\(4 + k)"
            let branch1x1 = try convBN(x, 192, 1, 1)
            var branch7x7 = try convBN(x, c7, 1, 1)
            branch7x7 = try convBN(branch7x7, c7, 1, 7)
            branch7x7 = try convBN(branch7x7, 192, 7, 1)
            var branch7x7dbl = try convBN(x, c7, 1, 1)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 7, 1)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 1, 7)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 7, 1)
            branch7x7dbl = try convBN(branch7x7dbl, 192, 1, 7)
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, 192, 1, 1)
            x = concat([branch1x1, branch7x7, branch7x7dbl, branchPool], name: "mixed\(4 + k)")
        }

        // mixed 8: 8 x 8 x 1280
        b.stage = "mixed8"
        do {
            var branch3x3 = try convBN(x, 192, 1, 1)
            branch3x3 = try convBN(branch3x3, 320, 3, 3, padding: .valid, strides: 2)
            var branch7x7x3 = try convBN(x, 192, 1, 1)
            branch7x7x3 = try convBN(branch7x7x3, 192, 1, 7)
            branch7x7x3 = try convBN(branch7x7x3, 192, 7, 1)
            branch7x7x3 = try convBN(branch7x7x3, 192, 3, 3, padding: .valid, strides: 2)
            let branchPool = maxPool(x)
            x = concat([branch3x3, branch7x7x3, branchPool], name: "mixed8")
        }

        // mixed 9, 10: 8 x 8 x 2048
        for k in 0..<2 {
            b.stage = "mixed\(9 + k)"
            let branch1x1 = try convBN(x, 320, 1, 1)
            var branch3x3 = try convBN(x, 384, 1, 1)
            let branch3x3a = try convBN(branch3x3, 384, 1, 3)
            let branch3x3b = try convBN(branch3x3, 384, 3, 1)
            branch3x3 = concat([branch3x3a, branch3x3b], name: "mixed9_\(k)")
            var branch3x3dbl = try convBN(x, 448, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 384, 3, 3)
            let branch3x3dblA = try convBN(branch3x3dbl, 384, 1, 3)
            let branch3x3dblB = try convBN(branch3x3dbl, 384, 3, 1)
            branch3x3dbl = concat([branch3x3dblA, branch3x3dblB])
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, 192, 1, 1)
            x = concat([branch1x1, branch3x3, branch3x3dbl, branchPool], name: "mixed\(9 + k)")
        }
    }
}

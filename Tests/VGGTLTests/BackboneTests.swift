import XCTest
import Foundation
import VGGTL

/// ResNet50, InceptionV3 and MobileNetV2 against real Keras: `model.layers` (order, names, classes, shapes,
/// parameters, connections, weights, the configuration that decides the computation) as
/// scripts/reference/keras/*.layers.json records them (tf.keras 2.15), Keras' parameter counts,
/// torchvision's counts for the torchvision architectures, and freezing as the tutorials do it.
final class BackboneTests: VGGTLTestCase {
    /// Where the Keras reference lists are: the repository's scripts/reference/keras (written by
    /// the reference scripts), or VGGTL_REFERENCE_KERAS.
    static let referenceDirectory: URL = {
        if let dir = ProcessInfo.processInfo.environment["VGGTL_REFERENCE_KERAS"] { return URL(fileURLWithPath: dir) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/reference/keras")
    }()

    /// Each backbone with Keras' top (1000 classes), built once (their weights take a while in a
    /// debug build) at the smallest input: shapes are computed for any input size. (One test at a
    /// time: see cpuDevice.)
    nonisolated(unsafe) static var models: [ModelConfig.Trunk: Model] = [:]
    func model(_ trunk: ModelConfig.Trunk) throws -> Model {
        if let m = Self.models[trunk] { return m }
        let side = trunk.backbone!.minimumSize
        let m = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], includeTop: true, classes: 1000), on: cpuDevice, seed: 1)
        Self.models[trunk] = m
        return m
    }

    /// Keras' list for the trunk alone (include_top=False) or with Keras' top.
    func kerasList(_ m: Model, top: Bool) -> [KerasLayer] {
        let all = m.kerasLayers
        return top ? all : Array(all.prefix { $0.layer.map(m.isTrunk) ?? true })
    }

    func testLayerListsEqualRealKeras() throws {
        for (file, trunk, top) in [("resnet50_notop", ModelConfig.Trunk.resnet50, false), ("resnet50_top", .resnet50, true),
                                   ("inceptionv3_notop", .inceptionV3, false), ("inceptionv3_top", .inceptionV3, true),
                                   ("mobilenetv2_notop", .mobileNetV2, false), ("mobilenetv2_top", .mobileNetV2, true)] {
            let url = Self.referenceDirectory.appendingPathComponent("\(file).layers.json")
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw XCTSkip("\(url.path) is not here (it comes with the reference scripts, scripts/reference/keras_structure.py)")
            }
            let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            let reference = json["layers"] as! [[String: Any]]
            let m = try model(trunk)
            let ours = kerasList(m, top: top)
            XCTAssertEqual(ours.count, json["layer_count"] as? Int, file)
            XCTAssertEqual(ours.map(\.name), reference.map { $0["name"] as! String }, "\(file): names in model.layers order")
            let side = trunk.backbone!.defaultSize
            let shapes = try m.network.shapes([1, side, side, 3])
            var total = 0
            for (k, r) in zip(ours, reference) {
                let what = "\(file) [\(r["index"]!)] \(k.name)"
                XCTAssertEqual(k.type, r["class_name"] as? String, what)
                XCTAssertEqual(Array(shapes[k.node.index].dropFirst()), (r["output_shape"] as! [Any]).dropFirst().map { $0 as! Int }, what)
                let params = k.layer?.weights.reduce(0) { $0 + $1.tensor.count } ?? 0
                XCTAssertEqual(params, r["params"] as? Int, what)
                total += params
                let inputs = m.network.inputs(of: k.node).map { m.network.layer(at: $0)?.name ?? "input_1" }
                XCTAssertEqual(k.layer == nil ? [] : inputs, r["inbound_layers"] as? [String], what)
                let weights = ((r["trainable_weights"] as! [[String: Any]]) + (r["non_trainable_weights"] as! [[String: Any]]))
                XCTAssertEqual(k.layer?.weights.map(\.name) ?? [], weights.map { ($0["name"] as! String).replacingOccurrences(of: ":0", with: "") }, what)
                XCTAssertEqual(k.layer?.weights.map(\.tensor.shape) ?? [], weights.map { $0["shape"] as! [Int] }, what)
                let config = r["config"] as! [String: Any]
                switch k.layer {
                case let c as Conv2D:
                    XCTAssertEqual([c.kernelSize.0, c.kernelSize.1], config["kernel_size"] as? [Int], what)
                    XCTAssertEqual([c.strides.0, c.strides.1], config["strides"] as? [Int], what)
                    XCTAssertEqual(c.padding.description, config["padding"] as? String, what)
                    XCTAssertEqual(c.bias != nil, config["use_bias"] as? Bool, what)
                    XCTAssertEqual(c.activation.rawValue, config["activation"] as? String, what)
                case let bn as BatchNormalization:
                    XCTAssertEqual(bn.epsilon, Float(config["epsilon"] as! Double), what)
                    XCTAssertEqual(bn.scale, config["scale"] as? Bool, what)
                case let p as Pool2D:
                    XCTAssertEqual([p.poolSize.0, p.poolSize.1, p.strides.0, p.strides.1], (config["pool_size"] as! [Int]) + (config["strides"] as! [Int]), what)
                    XCTAssertEqual(p.padding.description, config["padding"] as? String, what)
                    XCTAssertFalse(p.countPadding, what)
                case let z as ZeroPadding2D:
                    XCTAssertEqual([[z.top, z.bottom], [z.left, z.right]], config["padding"] as? [[Int]], what)
                case let d as Dense:
                    XCTAssertEqual(d.kernel.value.shape[1], config["units"] as? Int, what)
                case is ReLU:
                    XCTAssertEqual("relu", config["activation"] as? String, what)
                case let d as DepthwiseConv2D:
                    XCTAssertEqual([d.kernelSize.0, d.kernelSize.1], config["kernel_size"] as? [Int], what)
                    XCTAssertEqual([d.strides.0, d.strides.1], config["strides"] as? [Int], what)
                    XCTAssertEqual(d.padding.description, config["padding"] as? String, what)
                    XCTAssertEqual(d.bias != nil, config["use_bias"] as? Bool, what)
                    XCTAssertEqual(1, config["depth_multiplier"] as? Int, what)
                    XCTAssertEqual("linear", config["activation"] as? String, what)
                case let a as PointwiseActivation:
                    XCTAssertEqual(a.function, .relu6, what)
                    XCTAssertEqual(6, config["max_value"] as? Double, what)
                    XCTAssertEqual(0, config["negative_slope"] as? Double, what)
                    XCTAssertEqual(0, config["threshold"] as? Double, what)
                default: break
                }
            }
            XCTAssertEqual(total, json["total_params"] as? Int, file)
        }
    }

    func testParameterCountsOfKerasAndTorchvision() throws {
        // Keras (issue 11's table) and torchvision (parameters + BatchNorm running statistics,
        // torchvision 0.24: resnet50 25,557,032 + 53,120; inception_v3(aux_logits=False)
        // 23,834,568 + 34,432; minus the 2,049,000 of fc). Counts do not depend on the input size.
        for (trunk, notop, top, layers) in [(ModelConfig.Trunk.resnet50, 23_587_712, 25_636_712, 177), (.inceptionV3, 21_802_784, 23_851_784, 313),
                                            (.resnet50Torchvision, 23_561_152, 25_610_152, 177), (.inceptionV3Torchvision, 21_820_000, 23_869_000, 313)] {
            let m = try model(trunk)
            let count = { (ls: [Layer]) in ls.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.count } } }
            XCTAssertEqual(count(m.trunkLayers), notop, "\(trunk)")
            XCTAssertEqual(count(m.layers), top, "\(trunk)")
            XCTAssertEqual(m.kerasLayers.count, layers, "\(trunk)")
            XCTAssertEqual(m.headLayers.map(\.name), ["avg_pool", "predictions"])
            let s = try m.summary()
            XCTAssertTrue(s.contains("Total params: \(grouped(top))"), s)
            XCTAssertTrue(s.contains("include_top=False): \(layers - 2) layers with the InputLayer, \(grouped(notop)) params"), s)
        }
    }

    func grouped(_ n: Int) -> String {
        let f = NumberFormatter()
        f.numberStyle = .decimal; f.groupingSeparator = ","; f.usesGroupingSeparator = true
        return f.string(from: NSNumber(value: n))!
    }

    /// The torchvision architectures differ where the weight sources differ: ResNet v1.5 strides
    /// the 3x3 (symmetric padding) instead of the first 1x1, without biases, epsilon 1e-5;
    /// Inception3 has gamma and counts the padding in its average pools.
    func testTorchvisionArchitectures() throws {
        let keras = try model(.resnet50), tv = try model(.resnet50Torchvision)
        let k1 = keras.network.layer(named: "conv3_block1_1_conv") as! Conv2D, k2 = keras.network.layer(named: "conv3_block1_2_conv") as! Conv2D
        let t1 = tv.network.layer(named: "conv3_block1_1_conv") as! Conv2D, t2 = tv.network.layer(named: "conv3_block1_2_conv") as! Conv2D
        XCTAssertEqual([k1.strides.0, k2.strides.0, t1.strides.0, t2.strides.0], [2, 1, 1, 2])
        XCTAssertEqual(t2.padding, .symmetric(1))
        XCTAssertNil(t1.bias); XCTAssertNotNil(k1.bias)
        XCTAssertEqual((tv.network.layer(named: "conv1_bn") as! BatchNormalization).epsilon, 1e-5)
        XCTAssertEqual(try keras.network.outputShape([1, 224, 224, 3]), [1, 1000])
        XCTAssertEqual(try tv.network.outputShape([1, 224, 224, 3], of: tv.trunkOutput), [1, 7, 7, 2048])
        let ik = try model(.inceptionV3), it = try model(.inceptionV3Torchvision)
        XCTAssertFalse((ik.network.layer(named: "batch_normalization")! as! BatchNormalization).scale)
        XCTAssertTrue((it.network.layer(named: "batch_normalization")! as! BatchNormalization).scale)
        XCTAssertFalse((ik.network.layer(named: "average_pooling2d")! as! Pool2D).countPadding)
        XCTAssertTrue((it.network.layer(named: "average_pooling2d")! as! Pool2D).countPadding)
        XCTAssertEqual(try it.network.outputShape([1, 75, 75, 3], of: it.trunkOutput), [1, 1, 1, 2048])
    }

    /// `--freeze-first N` freezes Keras' first N layers; stage names unfreeze a stage and all after it.
    func testFreezingAsTheTutorials() throws {
        let r = try Model(ModelConfig(trunk: .resnet50, inputShape: [32, 32, 3], headPooling: .gap, headHidden: 16, classes: 3), on: cpuDevice, seed: 1)
        r.apply(.freezeFirst(168))
        for (i, k) in r.kerasLayers.enumerated() where !(k.layer?.parameters.isEmpty ?? true) {
            XCTAssertEqual(k.layer!.trainable, i >= 168, "\(i) \(k.name)")
        }
        XCTAssertEqual(r.kerasLayers[168].name, "conv5_block3_2_conv")
        r.apply(.fromStage("conv5"))
        XCTAssertEqual(Set(r.weightedLayers.filter(\.trainable).map { r.stage(of: $0) ?? "head" }), ["conv5", "head"])
        XCTAssertThrowsError(try r.check(.fromStage("mixed9")))
        XCTAssertThrowsError(try r.check(.fromBlock(5)))
        XCTAssertThrowsError(try r.check(.freezeFirst(1000)))
        XCTAssertEqual(try UnfreezeSpec(parsing: "conv5"), .fromStage("conv5"))
        XCTAssertEqual(try UnfreezeSpec(parsing: "freeze-first:249"), .freezeFirst(249))
        XCTAssertThrowsError(try UnfreezeSpec(parsing: "conv9"))

        // The Keras InceptionV3 tutorial's "train the top 2 inception blocks": layers[:249] frozen.
        let i = try Model(ModelConfig(trunk: .inceptionV3, inputShape: [75, 75, 3], headPooling: .gap, headHidden: 16, classes: 3), on: cpuDevice, seed: 1)
        i.apply(.freezeFirst(249))
        let byCut = i.layers.map(\.trainable)
        i.apply(.fromStage("mixed9"))
        XCTAssertEqual(i.layers.map(\.trainable), byCut)
        XCTAssertEqual(i.kerasLayers[248].name, "mixed8")
        // A frozen stem trains nothing before mixed9 and plans no gradient memory for it.
        let x = try Tensor(randomArray(2 * 75 * 75 * 3, seed: 3), shape: [2, 75, 75, 3], on: cpuDevice)
        let (_, g) = try Loss(.softmaxCrossEntropy).compute(logits: i.network.forward(x, .training), labels: Tensor([0, 2], shape: [2], on: cpuDevice))
        try i.network.backward(g)
        XCTAssertNil((i.network.layer(named: "conv2d_75") as! Conv2D).kernel.grad, "mixed8's last convolution is frozen")
        XCTAssertNotNil((i.network.layer(named: "conv2d_76") as! Conv2D).kernel.grad, "mixed9's first convolution trains")
    }

    /// The registry's identifiers are the strings checkpoints, features.json and weight metadata
    /// have always carried; unknown names are refused; each family answers for its own weights.
    func testRegistryKeepsTheCheckpointStringsAndEachFamilyAnswersForItsWeights() throws {
        XCTAssertEqual(Backbones.names, ["vgg16", "vgg16-bn", "resnet50", "resnet50-torchvision", "inceptionv3", "inceptionv3-torchvision",
                                         "mobilenetv2", "mobilenetv2-torchvision"])
        XCTAssertEqual(Backbones.families.map(\.family.name), ["vgg16", "resnet50", "inceptionv3", "mobilenetv2"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for name in Backbones.names + ["none"] {
            let trunk = try XCTUnwrap(ModelConfig.Trunk(rawValue: name))
            let json = String(decoding: try encoder.encode(ModelConfig(trunk: trunk, classes: 2)), as: UTF8.self)
            XCTAssertTrue(json.contains("\"trunk\":\"\(name)\""), json)
            XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).trunk, trunk)
        }
        XCTAssertNil(ModelConfig.Trunk(rawValue: "vgg19"))
        let unknown = String(decoding: try encoder.encode(ModelConfig(classes: 2)), as: UTF8.self).replacingOccurrences(of: "\"vgg16\"", with: "\"vgg19\"")
        XCTAssertThrowsError(try JSONDecoder().decode(ModelConfig.self, from: Data(unknown.utf8)))
        // Weight files: each family recognises its Keras names; torch names go to their naming.
        XCTAssertEqual(Backbones.trunk(names: ["block1_conv1/kernel"]), .vgg16)
        XCTAssertEqual(Backbones.trunk(names: ["block1_conv1/kernel", "block1_bn1/gamma"]), .vgg16BN)
        XCTAssertEqual(Backbones.trunk(names: ["conv1_conv/kernel", "conv1_conv/bias"]), .resnet50)
        XCTAssertEqual(Backbones.trunk(names: ["conv1_conv/kernel"]), .resnet50Torchvision)
        XCTAssertEqual(Backbones.trunk(names: ["conv2d/kernel", "batch_normalization/beta"]), .inceptionV3)
        XCTAssertEqual(Backbones.trunk(names: ["features.0.weight"]), .vgg16)
        XCTAssertEqual(Backbones.trunk(names: ["conv1.weight", "layer1.0.conv1.weight"]), .resnet50Torchvision)
        XCTAssertEqual(Backbones.trunk(names: ["dense/kernel"], metadata: [WeightMetadata.trunk: "inceptionv3-torchvision"]), .inceptionV3Torchvision)
        XCTAssertNil(Backbones.trunk(names: ["dense/kernel"]))
        XCTAssertEqual(Backbones.trunk(names: ["Conv1/kernel", "bn_Conv1/gamma", "expanded_conv_depthwise/depthwise_kernel"]), .mobileNetV2)
        XCTAssertEqual(Backbones.trunk(names: ["features.0.0.weight", "features.1.conv.0.0.weight", "features.18.0.weight"]), .mobileNetV2Torchvision)
        XCTAssertEqual(ImageNetWeights.trunks, [.vgg16, .resnet50, .inceptionV3])
    }
}

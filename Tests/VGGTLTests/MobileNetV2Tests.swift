import XCTest
import Foundation
@testable import VGGTL

/// MobileNetV2 (issue 18): Keras' layer list and counts (tf_keras 2.21: 154 layers and
/// 2,257,984 parameters without the top, 3,538,984 with it), Keras' `correct_pad` before the
/// strided depthwise convolutions, the torchvision variant, training and extracting through the
/// binary on the CPU and on PoCL, CPU-vs-OpenCL parity of the whole trunk, and weight files.
/// Small inputs (32 and 64 px), random weights made here.
final class MobileNetV2Tests: BinaryTestCase {
    func ok(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertFalse(r.signaled || r.output.contains("Fatal error"), r.output, file: file, line: line)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, tol: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tol, "\(what): max |a - b| / max |b| = \(worst / scale)", file: file, line: line)
        XCTAssertGreaterThan(scale, 0, what, file: file, line: line)
    }

    /// A model whose every weight is random, BatchNorm statistics included (a fresh model's are 0 and 1).
    func randomModel(_ trunk: ModelConfig.Trunk, side: Int, seed: UInt64 = 3, on device: Device? = nil) throws -> Model {
        let model = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], headHidden: 0, classes: 2), on: device ?? cpuDevice, seed: seed)
        var set = weightSet(of: model.layers)
        for (i, t) in set.tensors.enumerated() {
            let leaf = t.name.split(separator: "/").last!
            let range: ClosedRange<Float>
            switch leaf {
            case "gamma", "moving_variance": range = 0.5...1.5
            case "beta", "moving_mean": range = -0.2...0.2
            default: continue
            }
            set.tensors[i].values = randomArray(t.values.count, seed: seed &+ UInt64(i), range: range)
        }
        try loadWeights(set, into: model.layers)
        return model
    }

    func features(_ dir: String) throws -> [Float] { try NPY.read(url(dir).appendingPathComponent("features.npy")).values }

    /// The trunk's features of the images in `data`, computed here as extract computes them.
    func inMemoryFeatures(_ model: Model, _ data: URL, side: Int, _ p: Preprocessing) throws -> [Float] {
        let loader = BatchLoader(source: try ClassFolderSource(directory: data), batchSize: 64,
                                 input: InputSpec(height: side, width: side, preprocessing: p), shuffle: false, seed: 0)
        var out: [Float] = []
        for b in loader.batches(epoch: 0) {
            let x = try Tensor(b.x, shape: [b.count, side, side, 3], on: model.device)
            out += try model.network.forward(x, .inference, upTo: model.trunkOutput).toArray()
        }
        return out
    }

    // MARK: - Structure

    func testSummaryPrintsKerasCountsAndLayerNames() throws {
        let notop = try run(["summary", "--model", "mobilenetv2", "--no-head"])
        ok(notop)
        XCTAssertTrue(notop.output.contains("Total params: 2,257,984"), notop.output)
        // Keras: 2,223,872 trainable, 34,112 non-trainable (the BatchNorm moving statistics).
        XCTAssertTrue(notop.output.contains("Non-trainable params: 34,112") || notop.output.contains("Trainable params: 2,257,984"), notop.output)
        let rows = notop.output.split(separator: "\n").filter { $0.first?.isNumber == true }
        XCTAssertEqual(rows.count, 154, notop.output)
        XCTAssertTrue(rows.last?.hasPrefix("153   out_relu (ReLU)") == true, "\(rows.last ?? "")")
        XCTAssertTrue(notop.output.contains("(None, 7, 7, 1280)"), notop.output)
        for line in ["1     Conv1 (Conv2D)", "4     expanded_conv_depthwise (DepthwiseConv2D)", "12    block_1_pad (ZeroPadding2D)",
                     "100   block_11_expand_relu (ReLU)", "151   Conv_1 (Conv2D)", "152   Conv_1_bn (BatchNormalization)"] {
            XCTAssertTrue(notop.output.contains(line), "\(line) in\n\(notop.output)")
        }
        let top = try run(["summary", "--model", "mobilenetv2", "--include-top"])
        ok(top)
        XCTAssertTrue(top.output.contains("Total params: 3,538,984"), top.output)
        XCTAssertTrue(top.output.contains("include_top=False): 154 layers with the InputLayer, 2,257,984 params"), top.output)
        XCTAssertTrue(top.output.contains("global_average_pooling2d (GlobalAveragePooling2D)") && top.output.contains("predictions (Dense)"), top.output)
    }

    /// Keras' model.layers for one inverted residual block of each kind, padding as correct_pad
    /// computes it, and the torchvision variant's differences.
    func testLayerListPaddingAndTorchvisionVariant() throws {
        let m = try Model(ModelConfig(trunk: .mobileNetV2, inputShape: [224, 224, 3], includeTop: true, classes: 1000), on: cpuDevice, seed: 1)
        let names = m.kerasLayers.map(\.name)
        XCTAssertEqual(names.count, 156)
        XCTAssertEqual(Array(names.prefix(18)), ["input_1", "Conv1", "bn_Conv1", "Conv1_relu", "expanded_conv_depthwise", "expanded_conv_depthwise_BN",
                                                "expanded_conv_depthwise_relu", "expanded_conv_project", "expanded_conv_project_BN",
                                                "block_1_expand", "block_1_expand_BN", "block_1_expand_relu", "block_1_pad", "block_1_depthwise",
                                                "block_1_depthwise_BN", "block_1_depthwise_relu", "block_1_project", "block_1_project_BN"])
        XCTAssertEqual(Array(names[18...26]), ["block_2_expand", "block_2_expand_BN", "block_2_expand_relu", "block_2_depthwise", "block_2_depthwise_BN",
                                             "block_2_depthwise_relu", "block_2_project", "block_2_project_BN", "block_2_add"])
        XCTAssertEqual(names.filter { $0.hasSuffix("_add") }, [2, 4, 5, 7, 8, 9, 11, 12, 14, 15].map { "block_\($0)_add" })
        XCTAssertEqual(names.filter { $0.hasSuffix("_pad") }, [1, 3, 6, 13].map { "block_\($0)_pad" })
        XCTAssertEqual(Array(names.suffix(5)), ["Conv_1", "Conv_1_bn", "out_relu", "global_average_pooling2d", "predictions"])
        let bn = m.network.layer(named: "block_5_project_BN") as! BatchNormalization
        XCTAssertEqual(bn.epsilon, 1e-3)
        let pad = m.network.layer(named: "block_13_pad") as! ZeroPadding2D
        XCTAssertEqual([pad.top, pad.bottom, pad.left, pad.right], [0, 1, 0, 1], "correct_pad of an even 14x14")
        XCTAssertEqual((m.network.layer(named: "block_13_depthwise") as! DepthwiseConv2D).padding, .valid)
        XCTAssertEqual((m.network.layer(named: "block_12_depthwise") as! DepthwiseConv2D).padding, .same)
        XCTAssertEqual((m.network.layer(named: "Conv1") as! Conv2D).padding, .same)
        XCTAssertEqual(try m.network.outputShape([1, 224, 224, 3], of: m.trunkOutput), [1, 7, 7, 1280])
        XCTAssertEqual(try m.network.outputShape([1, 224, 224, 3]), [1, 1000])
        // 200 px: block_6 pads an odd 25x25 on every side, as Keras given input_shape=(200, 200, 3).
        let odd = try Model(ModelConfig(trunk: .mobileNetV2, inputShape: [200, 200, 3], classes: 2), on: cpuDevice, seed: 1)
        let p6 = odd.network.layer(named: "block_6_pad") as! ZeroPadding2D, p3 = odd.network.layer(named: "block_3_pad") as! ZeroPadding2D
        XCTAssertEqual([p6.top, p6.bottom, p6.left, p6.right, p3.top, p3.bottom], [1, 1, 1, 1, 0, 1])
        XCTAssertEqual(try odd.network.outputShape([1, 200, 200, 3], of: odd.trunkOutput), [1, 7, 7, 1280])

        let tv = try Model(ModelConfig(trunk: .mobileNetV2Torchvision, inputShape: [224, 224, 3], includeTop: true, classes: 1000), on: cpuDevice, seed: 1)
        XCTAssertEqual(tv.kerasLayers.map(\.name), names.dropLast() + ["dropout", "predictions"], "torchvision's classifier: Dropout(0.2), Linear")
        XCTAssertEqual((tv.network.layer(named: "dropout") as! Dropout).rate, 0.2)
        let count = { (ls: [Layer]) in ls.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.count } } }
        // torchvision mobilenet_v2: 3,504,872 parameters + 34,112 BatchNorm running statistics.
        XCTAssertEqual(count(tv.layers), 3_504_872 + 34_112)
        XCTAssertEqual(count(tv.trunkLayers), 2_257_984)
        XCTAssertEqual((tv.network.layer(named: "Conv1") as! Conv2D).padding, .symmetric(1))
        let tpad = tv.network.layer(named: "block_13_pad") as! ZeroPadding2D
        XCTAssertEqual([tpad.top, tpad.bottom, tpad.left, tpad.right], [1, 1, 1, 1])
        XCTAssertEqual((tv.network.layer(named: "bn_Conv1") as! BatchNormalization).epsilon, 1e-5)
        XCTAssertEqual(try tv.network.outputShape([1, 224, 224, 3], of: tv.trunkOutput), [1, 7, 7, 1280])
    }

    /// TensorFlow's tutorial: fine_tune_at = 100 freezes model.layers[:100]; stages unfreeze from a block.
    func testFreezingAsTheTutorial() throws {
        let m = try Model(ModelConfig(trunk: .mobileNetV2, inputShape: [32, 32, 3], headPooling: .gap, headHidden: 0, classes: 3), on: cpuDevice, seed: 1)
        XCTAssertEqual(ModelConfig.Trunk.mobileNetV2.backbone?.defaultUnfreeze, .freezeFirst(100))
        m.apply(.freezeFirst(100))
        for (i, k) in m.kerasLayers.enumerated() where !(k.layer?.parameters.isEmpty ?? true) {
            XCTAssertEqual(k.layer!.trainable, i >= 100, "\(i) \(k.name)")
        }
        XCTAssertFalse(m.network.layer(named: "block_11_expand_BN")!.trainable)
        XCTAssertTrue(m.network.layer(named: "block_11_depthwise")!.trainable)
        XCTAssertEqual(try UnfreezeSpec(parsing: "block_13"), .fromStage("block_13"))
        m.apply(.fromStage("block_13"))
        XCTAssertEqual(Set(m.weightedLayers.filter(\.trainable).map { m.stage(of: $0) ?? "head" }), ["block_13", "block_14", "block_15", "block_16", "conv_1", "head"])
        XCTAssertThrowsError(try m.check(.fromStage("conv5")))
    }

    // MARK: - Through the binary, CPU and PoCL

    func testFinetuneAndExtractOnTheCPUAndOnOpenCL() throws {
        let data = try writeImages("data", perClass: 3)
        for device in ["cpu", "opencl"] {
            let ft = try run(["finetune", "--device", device, "--model", "mobilenetv2", "--weights", "none", "--data", data.path, "--out", path("ft-\(device)"),
                              "--size", "32x32", "--epochs", "1", "--batch", "3", "--hidden", "8", "--seed", "2"])
            ok(ft)
            let saved = try Checkpoint.load(url("ft-\(device)/last.json"))
            XCTAssertEqual(saved.model.trunk, .mobileNetV2)
            XCTAssertEqual(saved.input.preprocessing, .rescale, "random weights take the tutorials' 1/255")
            let history = saved.history.records.map(\.loss)
            XCTAssertEqual(history.count, 1)
            XCTAssertTrue(history.allSatisfy(\.isFinite), "\(history)")
            let ex = try run(["extract", "--device", device, "--model", "mobilenetv2", "--weights", "none", "--data", data.path, "--out", path("ex-\(device)"),
                              "--size", "64x64", "--seed", "2"])
            ok(ex)
            let f = try NPY.read(url("ex-\(device)").appendingPathComponent("features.npy"))
            XCTAssertEqual(Array(f.shape.dropFirst()), [2, 2, 1280])
            XCTAssertTrue(f.values.allSatisfy(\.isFinite))
        }
        // Same seed, same weights: the devices' features agree.
        assertClose(try features("ex-opencl"), try features("ex-cpu"), "extract features, OpenCL vs CPU", tol: 1e-4)
    }

    /// The whole trunk forward (inference and training mode) and backward, CPU vs OpenCL, from the
    /// same random weights, at an odd size (block_1 and block_13 then pad on every side).
    func testWholeTrunkParityCPUvsOpenCL() throws {
        for trunk in [ModelConfig.Trunk.mobileNetV2, .mobileNetV2Torchvision] {
            let side = 45
            let cpu = try randomModel(trunk, side: side)
            let cl = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], headHidden: 0, classes: 2), on: openclDevice, seed: 99)
            try loadWeights(weightSet(of: cpu.layers), into: cl.layers)
            let xv = randomArray(2 * side * side * 3, seed: 5, range: -1...1)
            var outs: [[Float]] = []
            var grads: [[Float]] = []
            for m in [cpu, cl] {
                let x = try Tensor(xv, shape: [2, side, side, 3], on: m.device)
                outs.append(try m.network.forward(x, .inference, upTo: m.trunkOutput).toArray())
                let logits = try m.network.forward(x, .training)
                let (_, g) = try Loss(m.config.loss).compute(logits: logits, labels: Tensor([0, 1], shape: m.config.targetShape(rows: 2), on: m.device))
                try m.network.backward(g)
                grads.append(try (m.network.layer(named: "Conv1") as! Conv2D).kernel.grad!.toArray()
                             + (m.network.layer(named: "block_6_depthwise") as! DepthwiseConv2D).kernel.grad!.toArray())
            }
            assertClose(outs[1], outs[0], "\(trunk) trunk features", tol: 1e-4)
            assertClose(grads[1], grads[0], "\(trunk) Conv1 and block_6_depthwise kernel gradients", tol: 1e-3)
        }
    }

    // MARK: - Weights

    /// vggtl's own .h5 of a Keras MobileNetV2 loads back by name and gives the same features, and
    /// its Keras names say MobileNetV2; a torchvision state dict builds the torchvision variant.
    func testWeightsRoundTripsKerasH5AndTorchvisionStateDict() throws {
        let data = try writeImages("data", perClass: 2)
        let model = try randomModel(.mobileNetV2, side: 32)
        try KerasH5.write(weightSet(of: model.trunkLayers), to: url("mnv2.h5"))
        XCTAssertEqual(Backbones.trunk(names: try WeightFile.load(url("mnv2.h5")).names), .mobileNetV2)
        let r = try run(["extract", "--device", "cpu", "--model", "mobilenetv2", "--weights", path("mnv2.h5"), "--data", data.path,
                         "--out", path("k"), "--size", "32x32"])
        ok(r)
        XCTAssertTrue(r.output.contains("preprocessing tf"), r.output)
        XCTAssertEqual(try features("k"), try inMemoryFeatures(model, data, side: 32, .tf), "identical features from vggtl's own .h5")

        let tvModel = try randomModel(.mobileNetV2Torchvision, side: 32, seed: 4)
        var torch = try TorchNames.fromKeras(weightSet(of: tvModel.trunkLayers), trunk: .mobileNetV2Torchvision)
        XCTAssertEqual(torch.tensors.first { $0.name == "features.2.conv.1.0.weight" }?.shape, [96, 1, 3, 3], "torch's depthwise layout")
        XCTAssertEqual(torch.tensors.first { $0.name == "features.18.0.weight" }?.shape, [1280, 320, 1, 1])
        torch.tensors.append(("features.1.conv.0.1.num_batches_tracked", [1], [3]))
        try WeightFile.save(torch, to: url("mnv2.safetensors"), format: .safetensors)
        XCTAssertEqual(Backbones.trunk(names: torch.names), .mobileNetV2Torchvision)
        let t = try run(["extract", "--device", "cpu", "--model", "mobilenetv2", "--weights", path("mnv2.safetensors"), "--data", data.path,
                         "--out", path("t"), "--size", "32x32"])
        ok(t)
        XCTAssertTrue(t.output.contains("torchvision MobileNetV2 names: building the torchvision variant"), t.output)
        XCTAssertTrue(t.output.contains("preprocessing torch"), t.output)
        assertClose(try features("t"), try inMemoryFeatures(tvModel, data, side: 32, .torch), "torchvision MobileNetV2 features")

        // inspect names the variant; convert to Keras names and back to torch's is bit-exact
        // (the depthwise kernels [3, 3, C, 1] <-> [C, 1, 3, 3] included).
        let inspect = try run(["weights", "inspect", path("mnv2.safetensors")])
        ok(inspect)
        XCTAssertTrue(inspect.output.contains("(--model mobilenetv2-torchvision): every trunk tensor found"), inspect.output)
        ok(try run(["weights", "convert", path("mnv2.safetensors"), path("tv.h5")]))
        let keras = try WeightFile.load(url("tv.h5"))
        XCTAssertEqual(keras["block_1_depthwise/depthwise_kernel"]?.shape, [3, 3, 96, 1])
        XCTAssertEqual(keras["block_1_depthwise/depthwise_kernel"]?.values,
                       (tvModel.network.layer(named: "block_1_depthwise") as! DepthwiseConv2D).kernel.value.toArray())
        ok(try run(["weights", "convert", path("tv.h5"), path("back.safetensors"), "--naming", "torch"]))
        let back = try WeightFile.load(url("back.safetensors"))
        for t in torch.tensors where !t.name.hasSuffix("num_batches_tracked") {
            XCTAssertEqual(back[t.name]?.values, t.values, t.name)
            XCTAssertEqual(back[t.name]?.shape, t.shape, t.name)
        }
        XCTAssertEqual(back.tensors.count, torch.tensors.count - 1)
    }

    // MARK: - Against Keras itself

    /// Keras' own features (scripts/reference/keras_mobilenetv2_forward.py writes them, with
    /// TensorFlow, to the folder VGGTL_MOBILENETV2_REFERENCE names): its save_weights file loads
    /// by name and the trunk gives Keras' float64 features within float32 rounding, on the CPU
    /// and on OpenCL. Skipped without the folder (it needs TensorFlow from PyPI).
    func testFeaturesEqualKeras() throws {
        guard let dir = ProcessInfo.processInfo.environment["VGGTL_MOBILENETV2_REFERENCE"] else {
            throw XCTSkip("set VGGTL_MOBILENETV2_REFERENCE to a folder scripts/reference/keras_mobilenetv2_forward.py wrote")
        }
        let folder = URL(fileURLWithPath: dir)
        let x = try NPY.read(folder.appendingPathComponent("x.npy"))
        let expected = try NPY.read(folder.appendingPathComponent("features64.npy"))
        let keras32 = try NPY.read(folder.appendingPathComponent("features.npy"))
        let side = x.shape[1]
        for device in [cpuDevice, openclDevice] as [Device] {
            let m = try Model(ModelConfig(trunk: .mobileNetV2, inputShape: [side, side, 3], headHidden: 0, classes: 2), on: device, seed: 7)
            let report = try loadWeights(from: folder.appendingPathComponent("weights.h5"), into: m.trunkLayers)
            _ = report
            let y = try m.network.forward(try Tensor(x.values, shape: x.shape, on: device), .inference, upTo: m.trunkOutput)
            XCTAssertEqual(y.shape, expected.shape)
            assertClose(y.toArray(), expected.values, "vggtl on \(device.name) vs Keras float64", tol: 1e-5)
        }
        assertClose(keras32.values, expected.values, "Keras float32 vs float64 (the rounding we are held to)", tol: 1e-5)
    }

    /// torchvision's own features (scripts/reference/torchvision_mobilenetv2_forward.py writes
    /// them, with PyTorch, to the folder VGGTL_MOBILENETV2_TORCH_REFERENCE names): its state dict
    /// (with the 1000-class classifier) builds and loads the torchvision variant, whose trunk
    /// gives `model.features` in float64 within float32 rounding, on the CPU and on OpenCL.
    func testFeaturesEqualTorchvision() throws {
        guard let dir = ProcessInfo.processInfo.environment["VGGTL_MOBILENETV2_TORCH_REFERENCE"] else {
            throw XCTSkip("set VGGTL_MOBILENETV2_TORCH_REFERENCE to a folder scripts/reference/torchvision_mobilenetv2_forward.py wrote")
        }
        let folder = URL(fileURLWithPath: dir)
        let x = try NPY.read(folder.appendingPathComponent("x.npy"))
        let expected = try NPY.read(folder.appendingPathComponent("features64.npy"))
        let file = try WeightFile.load(folder.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Backbones.trunk(names: file.names), .mobileNetV2Torchvision)
        let side = x.shape[1]
        for device in [cpuDevice, openclDevice] as [Device] {
            let m = try Model(ModelConfig(trunk: .mobileNetV2Torchvision, inputShape: [side, side, 3], includeTop: true, classes: 1000),
                              on: device, seed: 7)
            try loadWeights(file, into: m.layers)
            let y = try m.network.forward(try Tensor(x.values, shape: x.shape, on: device), .inference, upTo: m.trunkOutput)
            XCTAssertEqual(y.shape, expected.shape)
            assertClose(y.toArray(), expected.values, "vggtl on \(device.name) vs torchvision float64", tol: 1e-5)
        }
    }
}

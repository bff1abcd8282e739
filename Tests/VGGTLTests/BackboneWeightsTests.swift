import XCTest
import Foundation
@testable import VGGTL

/// Weight files for ResNet50 and InceptionV3 through the binary: Keras .h5 (our names, and the
/// official InceptionV3 file's conv2d_1... names in Keras' model.layers order, loaded by order),
/// torchvision safetensors (resnet50 -> the v1.5 trunk, inception_v3 with AuxLogits), `--weights
/// imagenet`, `weights inspect/convert`, and the defaults that travel with the weights. Small
/// sizes (ResNet50 at 32 px, InceptionV3 at 75 px), random weights made here.
final class BackboneWeightsTests: BinaryTestCase {
    func ok(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertFalse(r.signaled || r.output.contains("Fatal error"), r.output, file: file, line: line)
    }


    func features(_ dir: String) throws -> [Float] { try NPY.read(url(dir).appendingPathComponent("features.npy")).values }
    func featuresInfo(_ dir: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(dir).appendingPathComponent("features.json"))) as! [String: Any]
    }

    /// A model whose every weight is random, BatchNorm statistics included (a fresh model's are 0 and 1).
    func randomModel(_ trunk: ModelConfig.Trunk, side: Int, seed: UInt64 = 3) throws -> Model {
        let model = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], headHidden: 0, classes: 2), on: cpuDevice, seed: seed)
        var set = weightSet(of: model.layers)
        for (i, t) in set.tensors.enumerated() where t.name.contains("batch_normalization") || t.name.contains("_bn/") {
            let range: ClosedRange<Float> = t.name.hasSuffix("moving_variance") ? 0.5...1.5 : (t.name.hasSuffix("gamma") ? 0.5...1.5 : -0.2...0.2)
            set.tensors[i].values = randomArray(t.values.count, seed: seed &+ UInt64(i), range: range)
        }
        try loadWeights(set, into: model.layers)
        return model
    }

    /// The trunk's features of the images in `data`, computed here as extract computes them.
    func inMemoryFeatures(_ model: Model, _ data: URL, side: Int, _ p: Preprocessing) throws -> [Float] {
        let loader = BatchLoader(source: try ClassFolderSource(directory: data), batchSize: 64,
                                 input: InputSpec(height: side, width: side, preprocessing: p), shuffle: false, seed: 0)
        var out: [Float] = []
        for b in loader.batches(epoch: 0) {
            let x = try Tensor(b.x, shape: [b.count, side, side, 3], on: cpuDevice)
            out += try model.network.forward(x, .inference, upTo: model.trunkOutput).toArray()
        }
        return out
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, 1e-5, "\(what): max |a - b| / max |b| = \(worst / scale)", file: file, line: line)
        XCTAssertGreaterThan(scale, 0, what, file: file, line: line)
    }

    /// The official file's name for each of our InceptionV3 layers, and Keras' model.layers order,
    /// from scripts/reference/keras/inceptionv3_official_names.json (made with real Keras).
    func officialInceptionNames(top: Bool) throws -> [(ours: String, official: String)] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: referenceDirectory.appendingPathComponent("keras/inceptionv3_official_names.json"))) as! [String: Any]
        let layers = (json[top ? "top" : "notop"] as! [String: Any])["layers"] as! [[String: Any]]
        return layers.map { ($0["fresh_tf_keras"] as! String, $0["official_file"] as! String) }
    }

    /// An .h5 as Keras' official InceptionV3 file has it: layer_names in model.layers order with the
    /// official names (conv2d_1 ... conv2d_94), BatchNorm without gamma; `top` adds avg_pool and a
    /// 1000-class predictions.
    func writeOfficialInception(_ model: Model, to name: String, top: Bool, modelSave: Bool = false) throws -> WeightSet {
        let names = try officialInceptionNames(top: top)
        let trunk = model.kerasLayers.filter { $0.layer.map(model.isTrunk) ?? true }.map(\.name)
        XCTAssertEqual(trunk, Array(names.map(\.ours).prefix(311)), "our model.layers order is Keras'")
        let official = Dictionary(uniqueKeysWithValues: names.map { ($0.ours, $0.official) })
        var set = WeightSet()
        for layer in model.kerasOrderedTrunkLayers {
            for w in layer.weights {
                set.tensors.append((official[layer.name]! + w.name.dropFirst(layer.name.count), w.tensor.shape, w.tensor.toArray()))
            }
        }
        if top {
            set.tensors.append(("predictions/kernel", [2048, 1000], randomArray(2048 * 1000, seed: 8, range: -0.01...0.01)))
            set.tensors.append(("predictions/bias", [1000], randomArray(1000, seed: 9)))
        }
        try KerasH5.write(set, to: url(name), options: .init(layerNames: names.map(\.official), modelWeightsGroup: modelSave))
        return set
    }

    /// A state dict as torchvision's, from a model of a torchvision trunk.
    func torchFile(_ model: Model, _ name: String, extra: [(String, [Int], [Float])] = []) throws -> WeightSet {
        var set = try TorchNames.fromKeras(weightSet(of: model.trunkLayers), trunk: model.config.trunk)
        set.tensors += extra.map { ($0.0, $0.1, $0.2) }
        try WeightFile.save(set, to: url(name), format: .safetensors)
        return set
    }

    // MARK: - The mapping against the reference dumps

    /// Every torch tensor of the torchvision dumps maps to the Keras name and shape the dump says
    /// (its keras_name, OIHW -> HWIO), and the names back again; AuxLogits and
    /// num_batches_tracked are left out, anything else unknown is an error that names it.
    func testTorchvisionNamesMapAsTheReferenceDumpsSay() throws {
        for (variant, backbone) in [("torchvision_resnet50", TorchBackbone.resnet50), ("torchvision_inceptionv3", .inceptionV3)] {
            let dump = try ReferenceDump(ReferenceDumps.url(variant))
            let torch = dump.tensors.filter { $0.layout == "torch" }
            let names = torch.map(\.name)
            XCTAssertEqual(TorchBackbone.detect(names: names), backbone)
            XCTAssertEqual(names, backbone.table.dropLast(2).map(\.torch), "\(variant): the table is the state_dict order")
            var input = torch.map { (name: $0.name, shape: $0.shape) }
            input.append((name: "layer1.0.bn1.num_batches_tracked", shape: []))
            if backbone == .inceptionV3 { input += [("AuxLogits.conv0.conv.weight", [128, 768, 1, 1]), ("AuxLogits.fc.weight", [1000, 768])] }
            let targets = try TorchNames.kerasTargets(for: input, file: variant)
            XCTAssertEqual(targets.count, torch.count)
            for t in torch {
                let expectedShape = t.shape.count == 4 ? [t.shape[2], t.shape[3], t.shape[1], t.shape[0]] : t.shape
                XCTAssertEqual(targets[t.name]?.name, t.keras_name, t.name)
                XCTAssertEqual(targets[t.name]?.shape, expectedShape, t.name)
            }
            let unknown = vggtlError { _ = try TorchNames.kerasTargets(for: input + [("layer9.0.conv1.weight", [1, 1, 1, 1])], file: variant) }
            XCTAssertTrue(unknown.contains("layer9.0.conv1.weight") && unknown.contains(backbone.title), unknown)
        }
        // Values: OIHW -> HWIO and (out, in) -> (in, out) as the reference test converts them, and back bit for bit.
        let k: [Float] = (0..<(4 * 3 * 2 * 5)).map { Float($0) }
        let fc: [Float] = (0..<(6 * 2048)).map { Float($0) }
        let w = WeightSet(tensors: [("conv1.weight", [4, 3, 2, 5], k), ("layer1.0.conv1.weight", [2, 2, 1, 1], [1, 2, 3, 4]), ("fc.weight", [6, 2048], fc)])
        let keras = try TorchNames.toKeras(w)
        XCTAssertEqual(keras["conv1_conv/kernel"]?.values, ReferenceModelTests.kerasLayout(k, [4, 3, 2, 5]).0)
        XCTAssertEqual(keras["predictions/kernel"]?.shape, [2048, 6])
        XCTAssertEqual(keras["predictions/kernel"]?.values[1], fc[2048])
        let back = try TorchNames.fromKeras(keras, trunk: .resnet50Torchvision)
        XCTAssertEqual(back.names, w.names)
        for t in w.tensors { XCTAssertEqual(back[t.name]?.values, t.values, t.name) }
    }

    // MARK: - torchvision ResNet50

    func testTorchvisionResNet50BuildsTheV15TrunkAndGivesTheModelsFeatures() throws {
        let data = try writeImages("data", perClass: 2)
        let model = try randomModel(.resnet50Torchvision, side: 32)
        let torch = try torchFile(model, "resnet50.safetensors", extra: [("fc.weight", [1000, 2048], randomArray(2048 * 1000, seed: 4, range: -0.01...0.01)),
                                                                          ("fc.bias", [1000], randomArray(1000, seed: 5)),
                                                                          ("layer1.0.bn1.num_batches_tracked", [1], [7])])
        let r = try run(["extract", "--device", "cpu", "--model", "resnet50", "--weights", path("resnet50.safetensors"), "--data", data.path,
                         "--out", path("f"), "--size", "32x32"])
        ok(r)
        XCTAssertEqual(r.output.components(separatedBy: "torchvision ResNet50 names: building the v1.5 trunk (stride on the 3x3 convolution)").count, 2, r.output)
        XCTAssertTrue(r.output.contains("preprocessing torch (from torchvision ResNet50 weights)"), r.output)
        let info = try featuresInfo("f")
        XCTAssertEqual(info["trunk"] as? String, "resnet50-torchvision")
        XCTAssertEqual((info["input"] as? [String: Any])?["preprocessing"] as? String, "torch")
        assertClose(try features("f"), try inMemoryFeatures(model, data, side: 32, .torch), "torchvision ResNet50 features")

        // A 1000-class fc into a 3-class fine-tuning task: the trunk loads, the head starts fresh, one line.
        let three = try writeImages("three", perClass: 1, classes: ["a", "b", "c"])
        let ft = try run(["finetune", "--device", "cpu", "--model", "resnet50", "--weights", path("resnet50.safetensors"), "--data", three.path,
                          "--out", path("ft"), "--size", "32x32", "--epochs", "1", "--batch", "3", "--hidden", "8"])
        ok(ft)
        let notes = ft.output.split(separator: "\n").filter { $0.contains("does not fit") }
        XCTAssertEqual(notes.count, 1, ft.output)
        XCTAssertTrue(notes.first?.contains("fc.weight [1000,2048], the model has [3,8]") == true, ft.output)
        let trained = try weights("ft")
        XCTAssertEqual(trained["conv1_conv/kernel"], torch.tensors.first { $0.name == "conv1.weight" }.map { ReferenceModelTests.kerasLayout($0.values, $0.shape).0 })
        let saved = try Checkpoint.load(url("ft/last.json"))
        XCTAssertEqual(saved.model.trunk, .resnet50Torchvision)
        XCTAssertEqual(saved.input.preprocessing, .torch)

        // Wrong shapes name the torch tensor and both shapes in torch layout.
        var wrong = torch
        let i = wrong.tensors.firstIndex { $0.name == "layer2.0.conv2.weight" }!
        wrong.tensors[i] = ("layer2.0.conv2.weight", [128, 64, 3, 3], randomArray(128 * 64 * 9, seed: 6))
        try WeightFile.save(wrong, to: url("wrong.safetensors"), format: .safetensors)
        assertCleanError(try run(["extract", "--device", "cpu", "--model", "resnet50", "--weights", path("wrong.safetensors"), "--data", data.path,
                                  "--out", path("x"), "--size", "32x32"]), ["layer2.0.conv2.weight", "[128,64,3,3]", "[128,128,3,3]"])
        // The architectures are not interchangeable: the error says which --model the file wants.
        assertCleanError(try run(["extract", "--device", "cpu", "--weights", path("resnet50.safetensors"), "--data", data.path, "--out", path("y"),
                                  "--size", "32x32"]), ["--model vgg16", "ResNet50 (torchvision", "use --model resnet50"])
        let keras = try randomModel(.resnet50, side: 32)
        try KerasH5.write(weightSet(of: keras.trunkLayers), to: url("keras_resnet.h5"))
        assertCleanError(try run(["extract", "--device", "cpu", "--model", "resnet50-torchvision", "--weights", path("keras_resnet.h5"),
                                  "--data", data.path, "--out", path("z"), "--size", "32x32"]),
                         ["--model resnet50-torchvision", "ResNet50 (Keras, v1", "use --model resnet50"])
        // Keras' ResNet50 by name: caffe preprocessing, its own features.
        let k = try run(["extract", "--device", "cpu", "--model", "resnet50", "--weights", path("keras_resnet.h5"), "--data", data.path,
                         "--out", path("k"), "--size", "32x32"])
        ok(k)
        XCTAssertTrue(k.output.contains("preprocessing caffe (from Keras ResNet50 weights)") && !k.output.contains("v1.5"), k.output)
        assertClose(try features("k"), try inMemoryFeatures(keras, data, side: 32, .caffe), "Keras ResNet50 features")

        // inspect says which backbone; convert to Keras names and back is bit-exact.
        let inspect = try run(["weights", "inspect", path("resnet50.safetensors")])
        ok(inspect)
        XCTAssertTrue(inspect.output.contains("backbone ResNet50 (torchvision, v1.5: stride on the 3x3) (--model resnet50-torchvision): every trunk tensor found, with Keras' top"), inspect.output)
        let kinspect = try run(["weights", "inspect", path("keras_resnet.h5")])
        XCTAssertTrue(kinspect.output.contains("backbone ResNet50 (Keras, v1: stride on the first 1x1) (--model resnet50): every trunk tensor found"), kinspect.output)
        XCTAssertTrue(kinspect.output.contains("ResNet50 (Keras, v1: stride on the first 1x1) has 23,587,712 without the top, 25,636,712 with it"), kinspect.output)
        let convert = try run(["weights", "convert", path("resnet50.safetensors"), path("resnet50.h5")])
        ok(convert)
        XCTAssertTrue(convert.output.contains("vggtl.trunk=resnet50-torchvision") && convert.output.contains("vggtl.preprocessing=torch")
                      && convert.output.contains("vggtl.input_size=224x224"), convert.output)
        ok(try run(["weights", "convert", path("resnet50.h5"), path("back.safetensors"), "--naming", "torch"]))
        let back = try WeightFile.load(url("back.safetensors"))
        for t in torch.tensors where !t.name.hasSuffix("num_batches_tracked") {
            XCTAssertEqual(back[t.name]?.values, t.values, t.name)
            XCTAssertEqual(back[t.name]?.shape, t.shape, t.name)
        }
        XCTAssertEqual(back.tensors.count, torch.tensors.count - 1)
        assertCleanError(try run(["weights", "convert", path("keras_resnet.h5"), path("t.safetensors"), "--naming", "torch"]),
                         ["--naming", "ResNet50 (Keras", "torchvision does not have"])
    }

    // MARK: - InceptionV3: the official file's names, loaded by order

    func testOfficialInceptionV3NamesLoadByOrderAndGiveTheSameFeaturesAsOurNames() throws {
        let data = try writeImages("data", perClass: 1)
        let model = try randomModel(.inceptionV3, side: 75)
        _ = try writeOfficialInception(model, to: "official.h5", top: false)
        _ = try writeOfficialInception(model, to: "official_save.h5", top: false, modelSave: true)
        try KerasH5.write(weightSet(of: model.trunkLayers), to: url("ours.h5"))
        let expected = try inMemoryFeatures(model, data, side: 75, .tf)
        for (file, byOrder) in [("official.h5", true), ("official_save.h5", true), ("ours.h5", false)] {
            let r = try run(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", path(file), "--data", data.path,
                             "--out", path("f-\(file)"), "--size", "75x75"])
            ok(r)
            XCTAssertEqual(r.output.contains("its layer names are not ours (conv2d_1 for our conv2d, ...): 188 layers paired by order"), byOrder, r.output)
            XCTAssertTrue(r.output.contains("preprocessing tf (from InceptionV3 weights)"), r.output)
            assertClose(try features("f-\(file)"), expected, file)
        }
        XCTAssertEqual(try features("f-official.h5"), try features("f-ours.h5"))
        // A head trained on those features goes back onto the trunk rebuilt from the official file (by order).
        ok(try run(["train-top", "--device", "cpu", "--features", path("f-official.h5"), "--out", path("top"), "--epochs", "1", "--batch", "2"]))
        let evaluate = try run(["evaluate", "--device", "cpu", "--model", path("top"), "--data", data.path])
        ok(evaluate)
        XCTAssertTrue(evaluate.output.contains("accuracy"), evaluate.output)

        // Creation order instead of Keras' order: the pairing fails on the first layer whose shape
        // differs, and the error names the file's layer and ours, with both shapes.
        var creation = WeightSet()
        let official = Dictionary(uniqueKeysWithValues: try officialInceptionNames(top: false).map { ($0.ours, $0.official) })
        for layer in model.trunkLayers { for w in layer.weights {
            creation.tensors.append((official[layer.name]! + w.name.dropFirst(layer.name.count), w.tensor.shape, w.tensor.toArray()))
        } }
        try KerasH5.write(creation, to: url("creation.h5"))
        let bad = try run(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", path("creation.h5"), "--data", data.path,
                           "--out", path("bad"), "--size", "75x75"])
        assertCleanError(bad, ["paired by order", "with our conv2d_", "where ours has", "not in Keras' model.layers order"])
        // A kernel of another shape: the file's tensor and our layer, both shapes.
        var wrong = try writeOfficialInception(model, to: "wrong.h5", top: false)
        let i = wrong.tensors.firstIndex { $0.name == "conv2d_2/kernel" }!
        wrong.tensors[i] = ("conv2d_2/kernel", [3, 3, 32, 16], randomArray(3 * 3 * 32 * 16, seed: 1))
        try KerasH5.write(wrong, to: url("wrong.h5"), options: .init(layerNames: try officialInceptionNames(top: false).map(\.official)))
        assertCleanError(try run(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", path("wrong.h5"), "--data", data.path,
                                  "--out", path("bad2"), "--size", "75x75"]),
                         ["conv2d_2/kernel", "paired by order", "our conv2d_1", "[3,3,32,16]", "[3,3,32,32]"])

        // The with-top file into a 3-class task: the trunk loads by order, the head starts fresh with one line.
        _ = try writeOfficialInception(model, to: "official_top.h5", top: true)
        let three = try writeImages("three", perClass: 1, classes: ["a", "b", "c"])
        let ft = try run(["finetune", "--device", "cpu", "--model", "inceptionv3", "--weights", path("official_top.h5"), "--data", three.path,
                          "--out", path("ft"), "--size", "75x75", "--epochs", "1", "--batch", "3", "--hidden", "8", "--unfreeze", "mixed10"])
        ok(ft)
        let notes = ft.output.split(separator: "\n").filter { $0.contains("does not fit") }
        XCTAssertEqual(notes.count, 1, ft.output)
        XCTAssertTrue(notes.first?.contains("predictions/kernel [2048,1000], the model has [8,3]") == true, ft.output)
        let trained = try weights("ft")
        XCTAssertEqual(trained["conv2d/kernel"], (model.layers.first { $0.name == "conv2d" } as! Conv2D).kernel.value.toArray())
        XCTAssertNil(trained["batch_normalization/gamma"])

        // inspect tells the backbone and the pairing; convert to safetensors and back is bit-exact,
        // and the defaults travel in the metadata.
        let inspect = try run(["weights", "inspect", path("official_top.h5")])
        ok(inspect)
        XCTAssertTrue(inspect.output.contains("layer names not ours, paired by order"), inspect.output)
        XCTAssertTrue(inspect.output.contains("backbone InceptionV3 (Keras) (--model inceptionv3): every trunk tensor found, with Keras' top"), inspect.output)
        XCTAssertTrue(inspect.output.contains("InceptionV3 (Keras) has 21,802,784 without the top, 23,851,784 with it"), inspect.output)
        let convert = try run(["weights", "convert", path("official.h5"), path("official.safetensors"), "--size", "75x75"])
        ok(convert)
        XCTAssertTrue(convert.output.contains("vggtl.trunk=inceptionv3") && convert.output.contains("vggtl.preprocessing=tf")
                      && convert.output.contains("vggtl.input_size=75x75"), convert.output)
        ok(try run(["weights", "convert", path("official.safetensors"), path("again.h5")]))
        let a = try WeightFile.load(url("official.h5")), b = try WeightFile.load(url("again.h5"))
        XCTAssertEqual(a.names, b.names)
        for t in a.tensors { XCTAssertEqual(b[t.name]?.values, t.values, t.name) }
        XCTAssertEqual(b.metadata[WeightMetadata.inputSize], "75x75")
        // The recorded size is the default size; the features are the same.
        let st = try run(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", path("official.safetensors"), "--data", data.path,
                          "--out", path("st")])
        ok(st)
        XCTAssertTrue(st.output.contains("preprocessing tf (from the file's metadata)"), st.output)
        XCTAssertEqual((try featuresInfo("st")["input"] as? [String: Any])?["height"] as? Int, 75)
        XCTAssertEqual(try features("st"), try features("f-official.h5"))
    }

    // MARK: - torchvision Inception3

    func testTorchvisionInceptionV3LeavesAuxLogitsOutWithOneLine() throws {
        let data = try writeImages("data", perClass: 1)
        let model = try randomModel(.inceptionV3Torchvision, side: 75)
        _ = try torchFile(model, "inception.safetensors", extra: [("AuxLogits.conv0.conv.weight", [128, 768, 1, 1], randomArray(128 * 768, seed: 2)),
                                                                   ("AuxLogits.fc.weight", [1000, 768], randomArray(768_000, seed: 3)),
                                                                   ("AuxLogits.fc.bias", [1000], randomArray(1000, seed: 4))])
        let r = try run(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", path("inception.safetensors"), "--data", data.path,
                         "--out", path("f"), "--size", "75x75"])
        ok(r)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.contains("left out 3 tensors of the auxiliary classifier (AuxLogits.*)") }.count, 1, r.output)
        XCTAssertTrue(r.output.contains("torchvision Inception3 names: building its InceptionV3 trunk"), r.output)
        XCTAssertEqual(try featuresInfo("f")["trunk"] as? String, "inceptionv3-torchvision")
        assertClose(try features("f"), try inMemoryFeatures(model, data, side: 75, .tf), "torchvision InceptionV3 features")
    }

    // MARK: - --weights imagenet

    func testImageNetFilesForResNet50AndInceptionV3AreKerasOwnAndChecked() throws {
        // The table is Keras' (scripts/reference/keras/weights_files.json, read from the Keras sources).
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: referenceDirectory.appendingPathComponent("keras/weights_files.json"))) as! [String: Any]
        for f in json["files"] as! [[String: Any]] {
            let trunk: ModelConfig.Trunk = f["model"] as! String == "resnet50" ? .resnet50 : .inceptionV3
            let file = try XCTUnwrap(ImageNetWeights.file(for: trunk, includeTop: f["include_top"] as! Bool))
            XCTAssertEqual(file.name, f["file"] as? String)
            XCTAssertEqual(file.md5, f["md5"] as? String)
            XCTAssertEqual(file.baseURL.appendingPathComponent(file.name).absoluteString, f["url"] as? String)
        }
        XCTAssertNil(ImageNetWeights.file(for: .resnet50Torchvision, includeTop: false))

        // Download (a local stand-in for storage.googleapis.com): the URL is ResNet50's, the hash is checked.
        let cache = url("keras/models")
        var requested: URL?
        let body = Data("not really resnet".utf8)
        let bad = vggtlError {
            _ = try ImageNetWeights.resolve(includeTop: false, trunk: .resnet50, cacheDirectory: cache, progress: false) { u, receive, _ in
                requested = u
                try body.withUnsafeBytes { try receive($0) }
            }
        }
        XCTAssertEqual(requested?.absoluteString, "https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
        XCTAssertTrue(bad.contains("MD5") && bad.contains("4d473c1dd8becc155b73f8504c6f6626"), bad)
        let got = try ImageNetWeights.resolve(includeTop: true, trunk: .inceptionV3, cacheDirectory: cache, expectedMD5: MD5.hex(body), progress: false) { u, receive, _ in
            requested = u
            try body.withUnsafeBytes { try receive($0) }
        }
        XCTAssertEqual(got.lastPathComponent, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5")
        XCTAssertEqual(requested?.absoluteString, "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5")

        // Through the binary: a damaged cached file is an error that says what to delete; no Keras file for torchvision trunks.
        let data = try writeImages("data", perClass: 1)
        for trunk in [ModelConfig.Trunk.resnet50, .inceptionV3] {
            let file = cache.appendingPathComponent(ImageNetWeights.fileName(includeTop: false, trunk: trunk))
            try Data(randomArray(100, seed: 5).map { UInt8(truncatingIfNeeded: Int($0 * 1000)) }).write(to: file)
            let r = try run(["extract", "--device", "cpu", "--model", trunk.rawValue, "--weights", "imagenet", "--data", data.path, "--out", path("f")],
                            env: ["KERAS_HOME": path("keras")])
            assertCleanError(r, [file.path, "MD5", ImageNetWeights.md5(includeTop: false, trunk: trunk), "Delete it", "rm '\(file.path)'"])
        }
        assertCleanError(try run(["extract", "--device", "cpu", "--model", "resnet50-torchvision", "--weights", "imagenet", "--data", data.path,
                                  "--out", path("g")], env: ["KERAS_HOME": path("keras")]),
                         ["--weights", "imagenet", "resnet50-torchvision", "vgg16, resnet50, inceptionv3 only"])
    }
}

import XCTest
@testable import VGGTL

/// Our ResNet50 and InceptionV3 (Keras and torchvision architectures) against the reference
/// dumps of scripts/reference, llm.c style: one dumped state per variant, one test, every tensor
/// compared. Per variant: the inference forward (features, logits, loss), one training step
/// with batch statistics (features, logits, loss, every gradient) and one fine-tuning step with
/// every BatchNormalization frozen in inference mode (loss, every gradient).
final class ReferenceModelTests: VGGTLTestCase {
    static let trunks: [String: ModelConfig.Trunk] = [
        "keras_resnet50": .resnet50, "torchvision_resnet50": .resnet50Torchvision,
        "keras_inceptionv3": .inceptionV3, "torchvision_inceptionv3": .inceptionV3Torchvision,
    ]

    /// forward: features/logits/loss; frozen: gradients of the frozen-BN step; train: gradients
    /// of the batch-statistics step (float32 itself is 1.5e-4 from float64 there: see
    /// scripts/reference/reports); sensitive: relative L2 of gradients behind a near-tie max pool.
    struct Tolerances { var forward, frozen, train, sensitive: Double }
    static let cpu = Tolerances(forward: 1e-4, frozen: 1e-4, train: 1e-3, sensitive: 0.25)
    static let opencl = Tolerances(forward: 1e-3, frozen: 1e-3, train: 2e-3, sensitive: 0.25)

    /// OIHW -> HWIO (torchvision's conv kernels); other tensors unchanged.
    static func kerasLayout(_ v: [Float], _ shape: [Int]) -> ([Float], [Int]) {
        guard shape.count == 4 else { return (v, shape) }
        let (o, i, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var out = [Float](repeating: 0, count: v.count)
        for a in 0..<o { for b in 0..<i { for y in 0..<h { for x in 0..<w {
            out[((y * w + x) * i + b) * o + a] = v[((a * i + b) * h + y) * w + x]
        } } } }
        return (out, [h, w, i, o])
    }

    func check(_ variant: String, on device: Device, _ tol: Tolerances) throws {
        let dump = try ReferenceDump(ReferenceDumps.url(variant))
        let s = dump.inputShape
        let config = ModelConfig(trunk: Self.trunks[variant]!, inputShape: Array(s.dropFirst()), includeTop: false,
                                 headPooling: .gap, headHidden: 0, headDropout: 0, classes: dump.classes)
        let model = try Model(config, on: device, seed: 1)

        var weights = WeightSet()
        for t in dump.tensors {
            let (v, shape) = t.layout == "torch" ? Self.kerasLayout(try dump.weight(t), t.shape) : (try dump.weight(t), t.shape)
            weights.tensors.append((t.vggtlName, shape, v))
        }
        let loaded = try loadWeights(weights, into: model.layers).loaded
        XCTAssertEqual(Set(loaded), Set(weights.names), "\(variant): every dump tensor is a model weight and back")

        let x = try Tensor(dump.array("input").values, shape: s, on: device)
        let labels = try Tensor(dump.array("labels").values, shape: [s[0]], on: device)
        let params = Dictionary(uniqueKeysWithValues: model.network.parameters.map { ($0.name, $0) })
        let loss = Loss(.softmaxCrossEntropy)
        var c = ReferenceComparator(dump)

        // Inference: moving statistics.
        try c.compare("inference/features", ours: model.network.forward(x, .inference, upTo: model.trunkOutput).toArray(),
                      tolerance: tol.forward)
        let logits = try model.network.forward(x, .inference)
        try c.compare("inference/logits", ours: logits.toArray(), tolerance: tol.forward)
        try c.compare("inference/loss", ours: [loss.compute(logits: logits, labels: labels).loss], tolerance: tol.forward)

        /// Every gradient the dump has for `step` against ours, as the backward just left them.
        func compareGradients(step: String, tolerance: Double) throws {
            for t in dump.trainable(step: step) {
                let g = try XCTUnwrap(params[t.vggtlName]?.grad, "\(variant): no gradient for \(t.vggtlName)").toArray()
                c.compareGradient(step: step, name: t.name, ours: g, tolerance: tolerance, sensitiveTolerance: tol.sensitive)
            }
        }

        // One from-scratch training step: batch statistics, everything trains.
        try c.compare("train/features", ours: model.network.forward(x, .training, upTo: model.trunkOutput).toArray(),
                      tolerance: tol.forward)
        let trainLogits = try model.network.forward(x, .training)
        try c.compare("train/logits", ours: trainLogits.toArray(), tolerance: tol.forward)
        let (trainLoss, dTrain) = try loss.compute(logits: trainLogits, labels: labels)
        try c.compare("train/loss", ours: [trainLoss], tolerance: tol.forward)
        try model.network.backward(dTrain)
        try compareGradients(step: "train", tolerance: tol.train)

        // One fine-tuning step: BatchNormalization frozen (inference mode, gamma/beta fixed), as Keras.
        try loadWeights(weights, into: model.layers)          // the training forwards moved the statistics
        for case let bn as BatchNormalization in model.layers { bn.trainable = false }
        let frozenLogits = try model.network.forward(x, .training)
        let (frozenLoss, dFrozen) = try loss.compute(logits: frozenLogits, labels: labels)
        try c.compare("frozen/loss", ours: [frozenLoss], tolerance: tol.forward)
        try model.network.backward(dFrozen)
        try compareGradients(step: "frozen", tolerance: tol.frozen)
        print(c.summary())
        c.assertAll()
    }

    func testKerasResNet50CPU() throws { try check("keras_resnet50", on: cpuDevice, Self.cpu) }
    func testTorchvisionResNet50CPU() throws { try check("torchvision_resnet50", on: cpuDevice, Self.cpu) }
    func testKerasInceptionV3CPU() throws { try check("keras_inceptionv3", on: cpuDevice, Self.cpu) }
    func testTorchvisionInceptionV3CPU() throws { try check("torchvision_inceptionv3", on: cpuDevice, Self.cpu) }
    func testKerasResNet50OpenCL() throws { try check("keras_resnet50", on: openclDevice, Self.opencl) }
    func testTorchvisionResNet50OpenCL() throws { try check("torchvision_resnet50", on: openclDevice, Self.opencl) }
    func testKerasInceptionV3OpenCL() throws { try check("keras_inceptionv3", on: openclDevice, Self.opencl) }
    func testTorchvisionInceptionV3OpenCL() throws { try check("torchvision_inceptionv3", on: openclDevice, Self.opencl) }
}

import XCTest
import VGGTL

final class ModelTests: VGGTLTestCase {
    func count(_ m: Model) -> Int { m.layers.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.count } } }

    func testVGG16ParameterCountsMatchKeras() throws {
        // Keras: VGG16(include_top=False) 14,714,688; VGG16() 138,357,544.
        let notop = try Model(ModelConfig(inputShape: [224, 224, 3], headHidden: 0, classes: 2), on: cpuDevice, seed: 1)
        XCTAssertEqual(count(notop) - (25088 * 1 + 1), 14_714_688)
        // At 224x224 fc1 has 25088 inputs and the whole model 138,357,544 weights; at 32x32 fc1
        // sees 512 features, which keeps this test quick: the same count minus 24576 x 4096.
        let top = try Model(ModelConfig(inputShape: [32, 32, 3], includeTop: true, classes: 1000), on: cpuDevice, seed: 1)
        XCTAssertEqual(count(top), 138_357_544 - (25088 - 512) * 4096)
        XCTAssertEqual(top.layers.map(\.name).suffix(4), ["flatten", "fc1", "fc2", "predictions"])
        XCTAssertEqual(top.layers.first?.name, "block1_conv1")
        XCTAssertEqual(try top.network.outputShape([2, 32, 32, 3]), [2, 1000])
    }

    func testSummaryTable() throws {
        let m = try Model(ModelConfig(inputShape: [150, 150, 3], classes: 2), on: cpuDevice, seed: 1)
        m.apply(.fromBlock(5))
        let s = try m.summary()
        XCTAssertTrue(s.contains("block5_conv3 (Conv2D)"))
        XCTAssertTrue(s.contains("(None, 4, 4, 512)"))
        XCTAssertTrue(s.contains("Total params: 16,812,353"))
        XCTAssertTrue(s.contains("Trainable params: 9,177,089"))
    }

    func testUnfreezeSpecs() throws {
        let m = try Model(ModelConfig(inputShape: [32, 32, 3], classes: 3), on: cpuDevice, seed: 1)
        func trainable() -> [String] { m.weightedLayers.filter(\.trainable).map(\.name) }
        m.apply(.none); XCTAssertEqual(trainable(), ["dense", "predictions"])
        m.apply(.fromBlock(5)); XCTAssertEqual(trainable(), ["block5_conv1", "block5_conv2", "block5_conv3", "dense", "predictions"])
        m.apply(.lastLayers(3)); XCTAssertEqual(trainable(), ["block5_conv3", "dense", "predictions"])
        m.apply(.all); XCTAssertEqual(trainable().count, 15)
        XCTAssertEqual(try UnfreezeSpec(parsing: "block4"), .fromBlock(4))
        XCTAssertThrowsError(try UnfreezeSpec(parsing: "block9"))
        XCTAssertThrowsError(try UnfreezeSpec(parsing: "-1"))
    }

    /// Fine-tuning block5: blocks 1-4 stay bit-identical, frozen BN statistics do not move, block5 learns.
    func testFrozenLayersStayBitIdentical() throws {
        for trunk in [ModelConfig.Trunk.vgg16, .vgg16BN] {
            let m = try Model(ModelConfig(trunk: trunk, inputShape: [32, 32, 3], headHidden: 16, classes: 3), on: cpuDevice, seed: 2)
            m.apply(.fromBlock(5))
            let before = m.layers.flatMap { $0.weights.map { ($0.name, $0.tensor.toArray()) } }
            let opt = SGD(learningRate: 0.01, momentum: 0.9)
            let loss = Loss(m.config.loss)
            for step in 0..<2 {
                let x = try Tensor(randomArray(2 * 32 * 32 * 3, seed: UInt64(step)), shape: [2, 32, 32, 3], on: cpuDevice)
                let y = try Tensor([0, 2], shape: [2], on: cpuDevice)
                let (_, g) = try loss.compute(logits: m.network.forward(x, .training), labels: y)
                try m.network.backward(g)
                try opt.update(m.network.trainableParameters)
            }
            let after = Dictionary(uniqueKeysWithValues: m.layers.flatMap { $0.weights.map { ($0.name, $0.tensor.toArray()) } })
            for (name, values) in before {
                let block = VGG16.block(of: name)
                if let block, block < 5 {
                    XCTAssertEqual(after[name]!, values, "\(trunk) \(name) changed although frozen")
                } else if name.hasSuffix("/kernel") {
                    XCTAssertNotEqual(after[name]!, values, "\(trunk) \(name) did not train")
                }
            }
            // Frozen layers never even got gradient buffers.
            XCTAssertNil(m.layers[0].parameters[0].grad)
        }
    }

    /// The bulk initialiser gives exactly the values one call at a time gives (runs stay reproducible).
    func testBulkUniformEqualsOneAtATime() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        var bulk = [Float](repeating: 0, count: 1001)
        bulk.withUnsafeMutableBufferPointer { a.fillUniform($0.baseAddress!, count: 1001, lo: -0.3, hi: 0.7) }
        XCTAssertEqual(bulk, (0..<1001).map { _ in b.uniform(-0.3, 0.7) })
        XCTAssertEqual(a.next(), b.next())
    }

    func testBadConfigsAreClearErrors() {
        XCTAssertThrowsError(try Model(ModelConfig(inputShape: [16, 16, 3], classes: 2), on: cpuDevice, seed: 1)) { e in
            XCTAssertTrue(cliMessage(e).contains("--size"), cliMessage(e))
        }
        XCTAssertThrowsError(try Model(ModelConfig(inputShape: [32, 32, 3], classes: 1), on: cpuDevice, seed: 1))
        XCTAssertThrowsError(try LearningRateSchedule(parsing: "step:0:0.1", epochs: 3))
        XCTAssertEqual(try LearningRateSchedule(parsing: "step:2:0.5", epochs: 3).rate(base: 1, epoch: 5), 0.25)
        XCTAssertEqual(try LearningRateSchedule(parsing: "cosine", epochs: 4).rate(base: 1, epoch: 2), 0.5, accuracy: 1e-6)
    }
}

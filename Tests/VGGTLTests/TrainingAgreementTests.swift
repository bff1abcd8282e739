import XCTest
import VGGTL

/// A 3-layer conv net trained on the same synthetic batches on both backends: it must learn,
/// and the two loss curves must agree step by step.
final class TrainingAgreementTests: VGGTLTestCase {
    static let classes = 4, size = 12, batch = 8

    /// Class c is a bright square in quadrant c over noise: learnable, not trivial.
    static func batch(_ step: Int) -> (x: [Float], y: [Float]) {
        var g = SeededGenerator(seed: 1000 + UInt64(step))
        var x = [Float](), y = [Float]()
        for _ in 0..<batch {
            let c = Int(g.next() % UInt64(classes))
            y.append(Float(c))
            for i in 0..<size { for j in 0..<size { for ch in 0..<3 {
                let inside = (i / (size / 2)) * 2 + (j / (size / 2)) == c
                x.append(g.uniform(-0.5, 0.5) + (inside ? 1.0 + 0.2 * Float(ch) : 0))
            } } }
        }
        return (x, y)
    }

    func train(on d: Device, steps: Int) throws -> [Float] {
        var rng = SeededGenerator(seed: 77)
        let model = Sequential([
            try Conv2D("conv1", inChannels: 3, filters: 8, on: d, rng: &rng),
            Pool2D("pool1", .max),
            try Conv2D("conv2", inChannels: 8, filters: 16, on: d, rng: &rng),
            GlobalAveragePooling2D("gap"),
            try Dense("predictions", inputs: 16, units: Self.classes, on: d, rng: &rng),
        ])
        let opt = SGD(learningRate: 0.1, momentum: 0.9)
        let loss = Loss(.softmaxCrossEntropy)
        var losses: [Float] = []
        for step in 0..<steps {
            let (xv, yv) = Self.batch(step)
            let x = try Tensor(xv, shape: [Self.batch, Self.size, Self.size, 3], on: d)
            let y = try Tensor(yv, shape: [Self.batch], on: d)
            let logits = try model.forward(x, training: true)
            let (l, grad) = try loss.compute(logits: logits, labels: y)
            try model.backward(grad)
            try opt.update(model.trainableParameters)
            losses.append(l)
        }
        return losses
    }

    func testThreeLayerConvNetLossCurvesAgree() throws {
        let steps = 30
        let cpu = try train(on: cpuDevice, steps: steps)
        let cl = try train(on: openclDevice, steps: steps)
        for i in 0..<steps {
            XCTAssertEqual(cl[i], cpu[i], accuracy: 1e-3 * max(1, abs(cpu[i])), "step \(i): cpu \(cpu[i]) opencl \(cl[i])")
        }
        let first = cpu.prefix(5).reduce(0, +) / 5, last = cpu.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(last, 0.6 * first, "the net did not learn: mean loss \(first) -> \(last)")
    }

    /// The network's backward writes input and scratch gradients into three shared buffers
    /// (GradientArena): the parameter gradients must be bit-identical to a backward in which
    /// every layer keeps its own buffers, on both backends, and the arena must hold no more than
    /// three of the largest gradient.
    func testSharedGradientBuffersGiveTheSameGradients() throws {
        for d in [cpuDevice as Device, openclDevice as Device] {
            var rng = SeededGenerator(seed: 5)
            let model = Sequential([
                try Conv2D("conv1", inChannels: 3, filters: 8, on: d, rng: &rng),
                try BatchNormalization("bn1", channels: 8, on: d),
                try Conv2D("conv2", inChannels: 8, filters: 8, on: d, rng: &rng),
                Pool2D("pool1", .max),
                ReLU("relu"),
                try Conv2D("conv3", inChannels: 8, filters: 4, activation: .linear, on: d, rng: &rng),
                GlobalAveragePooling2D("gap"),
                Flatten(),
                try Dense("fc1", inputs: 4, units: 16, activation: .relu, on: d, rng: &rng),
                try Dropout("dropout", rate: 0.3, seed: 9),
                try Dense("predictions", inputs: 16, units: Self.classes, on: d, rng: &rng),
            ])
            let (xv, yv) = Self.batch(0)
            let x = try Tensor(xv, shape: [Self.batch, Self.size, Self.size, 3], on: d)
            let y = try Tensor(yv, shape: [Self.batch], on: d)
            let logits = try model.forward(x, training: true)
            let (_, grad) = try Loss(.softmaxCrossEntropy).compute(logits: logits, labels: y)

            try model.backward(grad)  // the arena grows in the first backward; the check is for the steady state
            var dy = grad
            for (i, layer) in model.layers.enumerated().reversed() {
                if let dx = try layer.backward(dy, inputGradient: i > 0) { dy = dx }
            }
            let own = model.parameters.map { $0.grad!.toArray() }
            for p in model.parameters { p.grad!.zero() }

            try model.backward(grad)
            for (p, expected) in zip(model.parameters, own) {
                XCTAssertEqual(p.grad!.toArray(), expected, "\(p.name) on \(d.name)")
            }
            let largest = Self.batch * Self.size * Self.size * 8 * MemoryLayout<Float>.size
            XCTAssertGreaterThan(model.gradients.bytes, 0)
            XCTAssertLessThanOrEqual(model.gradients.bytes, 3 * largest)
        }
    }
}

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
}

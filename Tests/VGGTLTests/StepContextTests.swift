import XCTest
import VGGTL

/// The step context carries what a step tells its layers (the samples' place in the global
/// batch, shared batch statistics, a fused epilogue), and the memory planner knows layers only by
/// what they declare: a layer written outside the library gets the same planning as ours.
final class StepContextTests: VGGTLTestCase {
    /// A copy that declares it can write channel slices and apply a ReLU epilogue: a layer the
    /// planner has never heard of.
    final class Copy: UnaryLayer {
        let name: String
        init(_ name: String) { self.name = name }
        func outputShape(_ input: [Int]) throws -> [Int] { input }

        func memory(inputs: [[Int]], context: StepContext) -> LayerMemory {
            var m = LayerMemory()
            m.backwardReadsInputs = false
            m.writesChannelSlices = true
            m.epilogues = [.relu]
            return m
        }

        func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
            guard let y = out else { throw VGGTLError.invalidArgument("layer \(name): no output tensor") }
            if context.epilogue == .relu {
                x.device.reluRows(x.buffer, x.layout, y.buffer, y.layout, rows: x.rows, cols: x.rowLength)
            } else {
                copy(x, y)
            }
            return y
        }

        func backward(_ dy: Tensor, _ g: GradientTargets, context: StepContext) throws {
            if let dx = g.inputs[0] { copy(dy, dx) }
        }

        private func copy(_ a: Tensor, _ b: Tensor) {
            a.device.copyBlock(a.buffer, BlockLayout(offset: a.offset, rowStride: a.rowStride), to: b.buffer,
                               BlockLayout(offset: b.offset, rowStride: b.rowStride), outer: 1, rows: a.rows, cols: a.rowLength)
        }
    }

    /// Forward and backward of `make()`'s network, planned and with a buffer per value: the
    /// output and the input gradient, and the planned network's plan in words.
    func run(_ make: () -> Graph, x: [Float], shape: [Int]) throws -> (y: [Float], dx: [Float], plan: String) {
        var results: [(y: [Float], dx: [Float])] = [], plan = ""
        for policy in [MemoryPolicy.planned, .separate] {
            let g = make()
            g.memoryPolicy = policy
            g.computesInputGradient = true
            let y = try g.forward(Tensor(x, shape: shape, on: cpuDevice), .training)
            try g.backward(Tensor(randomArray(y.count, seed: 3), shape: y.shape, on: cpuDevice))
            results.append((y.toArray(), g.inputGradient!.toArray()))
            if policy == .planned { plan = g.planDescription() }
        }
        XCTAssertEqual(results[0].y, results[1].y, "planned and separate outputs")
        XCTAssertEqual(results[0].dx, results[1].dx, "planned and separate input gradients")
        return (results[0].y, results[0].dx, plan)
    }

    func testPlannerFusesAnEpilogueIntoALayerThatDeclaresIt() throws {
        let x = randomArray(2 * 3 * 3 * 4, seed: 1)
        let r = try run({ Graph([Copy("a"), ReLU("relu")]) }, x: x, shape: [2, 3, 3, 4])
        XCTAssertTrue(r.plan.contains("forward relu: fused into a"), r.plan)
        XCTAssertEqual(r.y, x.map { max($0, 0) })
    }

    func testPlannerPlacesSliceWritersInAConcatenation() throws {
        let x = randomArray(2 * 3 * 3 * 4, seed: 2)
        let r = try run({
            let g = Graph()
            let a = g.add(Copy("a"), g.input), b = g.add(Copy("b"), g.input)
            g.add(Concatenate("cat"), a, b)
            return g
        }, x: x, shape: [2, 3, 3, 4])
        let lines = r.plan.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("forward a:") && $0.hasSuffix("+0 stride 8") }, r.plan)
        XCTAssertTrue(lines.contains { $0.hasPrefix("forward b:") && $0.contains("+4 stride 8") }, r.plan)
        var expected: [Float] = []
        for row in 0..<(x.count / 4) {
            let pixel = x[(row * 4)..<(row * 4 + 4)]
            expected += pixel + pixel
        }
        XCTAssertEqual(r.y, expected)
    }

    /// A process whose batch starts at sample k of the global batch draws the masks the whole
    /// batch has there, forward and backward.
    func testDropoutMasksFollowTheSampleOffset() throws {
        let width = 10, ones = [Float](repeating: 1, count: 6 * width)
        let whole = try Dropout("dropout", rate: 0.5, seed: 9)
        let all = try whole.forward(Tensor(ones, shape: [6, width], on: cpuDevice), .training).toArray()
        XCTAssertTrue(all.contains(0) && all.contains(2), "some units dropped, some kept")
        for (start, rows) in [(0, 2), (2, 4)] {
            let part = try Dropout("dropout", rate: 0.5, seed: 9)
            let slice = Array(all[(start * width)..<((start + rows) * width)])
            let x = try Tensor(Array(ones.prefix(rows * width)), shape: [rows, width], on: cpuDevice)
            XCTAssertEqual(try part.forward(x, StepContext(training: true, sampleOffset: start)).toArray(), slice, "rows from \(start)")
            let dx = try part.backward(Tensor(Array(ones.prefix(rows * width)), shape: [rows, width], on: cpuDevice), inputGradient: true)
            XCTAssertEqual(dx?.toArray(), slice, "the backward uses the forward's offset")
        }
    }

    /// Counts its calls and returns this process's own statistics: one process alone.
    final class LoneSync: BatchStatisticsSync {
        var statistics = 0, sums = 0
        func reduceStatistics(mean: Tensor, variance: Tensor, rows: Int, layer: String) throws -> Int {
            statistics += 1
            return rows
        }
        func reduceGradientSums(dgamma: Tensor, dbeta: Tensor, layer: String) throws -> (dgamma: [Float], dbeta: [Float]) {
            sums += 1
            return (dgamma.toArray(), dbeta.toArray())
        }
    }

    /// The statistics are shared only in the steps whose context carries a sync; one process
    /// sharing with itself computes what it computes alone.
    func testBatchStatisticsAreSharedOnlyThroughTheContext() throws {
        let shape = [4, 3, 3, 5], x = randomArray(4 * 3 * 3 * 5, seed: 4), dyValues = randomArray(4 * 3 * 3 * 5, seed: 5)
        let sync = LoneSync()
        var results: [[[Float]]] = []
        for context in [StepContext.training, StepContext(training: true, statisticsSync: sync)] {
            let bn = try BatchNormalization("bn", channels: 5, on: cpuDevice)
            let y = try bn.forward(Tensor(x, shape: shape, on: cpuDevice), context)
            let dx = try bn.backward(Tensor(dyValues, shape: shape, on: cpuDevice), inputGradient: true)!
            results.append([y.toArray(), dx.toArray(), bn.gamma!.grad!.toArray(), bn.beta.grad!.toArray(), bn.movingMean.toArray()])
        }
        XCTAssertEqual(sync.statistics, 1, "one forward with the sync")
        XCTAssertEqual(sync.sums, 1, "one backward with the sync")
        for (i, what) in ["y", "dx", "dgamma", "dbeta", "moving mean"].enumerated() {
            assertClose(results[1][i], results[0][i], tol: 1e-5, "\(what) with a lone sync")
        }
    }
}

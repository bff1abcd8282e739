import XCTest
import VGGTL

/// The update kernels against the textbook formulas, evaluated here in Double for 5 steps.
final class OptimizerTests: VGGTLTestCase {
    let p0 = randomArray(37, seed: 1)
    let grads = (0..<5).map { randomArray(37, seed: 10 + UInt64($0)) }

    func run(_ opt: Optimizer, on device: Device) throws -> [Float] {
        let p = Parameter(name: "w", value: try Tensor(p0, shape: [37], on: device))
        for g in grads {
            let gt = try Tensor(g, shape: [37], on: device)
            try p.setGradientForTesting(gt)
            try opt.update([p])
        }
        return p.value.toArray()
    }

    func testSGDMomentumNesterovWeightDecay() throws {
        for (momentum, nesterov, wd) in [(0.0, false, 0.0), (0.9, false, 0.0), (0.9, true, 1e-2), (0.5, false, 1e-3)] {
            var p = p0.map(Double.init), v = [Double](repeating: 0, count: 37)
            for g in grads { for i in p.indices {
                let gi = Double(g[i]) + wd * p[i]
                v[i] = momentum * v[i] + gi
                p[i] -= 0.1 * (nesterov ? gi + momentum * v[i] : v[i])
            } }
            let got = try run(SGD(learningRate: 0.1, momentum: Float(momentum), nesterov: nesterov, weightDecay: Float(wd)), on: cpuDevice)
            assertClose(got, p.map(Float.init), tol: 1e-5, "SGD m=\(momentum) nesterov=\(nesterov) wd=\(wd)")
        }
    }

    func testAdam() throws {
        var p = p0.map(Double.init), m = [Double](repeating: 0, count: 37), v = m
        for (t, g) in grads.enumerated() { for i in p.indices {
            let gi = Double(g[i])
            m[i] = 0.9 * m[i] + 0.1 * gi; v[i] = 0.999 * v[i] + 0.001 * gi * gi
            let mh = m[i] / (1 - pow(0.9, Double(t + 1))), vh = v[i] / (1 - pow(0.999, Double(t + 1)))
            p[i] -= 0.01 * mh / (vh.squareRoot() + 1e-7)
        } }
        assertClose(try run(Adam(learningRate: 0.01), on: cpuDevice), p.map(Float.init), tol: 1e-5, "Adam")
    }

    func testRMSprop() throws {
        var p = p0.map(Double.init), s = [Double](repeating: 0, count: 37)
        for g in grads { for i in p.indices {
            let gi = Double(g[i]) + 1e-3 * p[i]
            s[i] = 0.9 * s[i] + 0.1 * gi * gi
            p[i] -= 0.01 * gi / (s[i].squareRoot() + 1e-7)
        } }
        assertClose(try run(RMSprop(learningRate: 0.01, weightDecay: 1e-3), on: cpuDevice), p.map(Float.init), tol: 1e-5, "RMSprop")
    }

    func testFrozenParameterIsNotUpdated() throws {
        let p = Parameter(name: "w", value: try Tensor(p0, shape: [37], on: cpuDevice))
        p.trainable = false
        try p.setGradientForTesting(try Tensor(grads[0], shape: [37], on: cpuDevice))
        try SGD(learningRate: 0.1, momentum: 0.9).update([p])
        XCTAssertEqual(p.value.toArray(), p0)
    }
}

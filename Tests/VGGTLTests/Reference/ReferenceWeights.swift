import Foundation
import VGGTL

/// The deterministic tensors of scripts/reference/weightgen.py, bit for bit (the spec is in that
/// file and in scripts/reference/README.md): a tensor's values come from SplitMix64 (vggtl's
/// `SeededGenerator`) seeded with the FNV-1a hash of its name, so the 94 MB of weights a
/// reference dump was made with need not be stored. Test-only.
enum ReferenceWeights {
    enum Kind: String, CaseIterable {
        case kernel, bias, gamma, beta, input
        case movingMean = "moving_mean", movingVariance = "moving_variance"
    }

    /// The layout the values are generated in: "keras" (HWIO conv, (in, out) dense) or "torch"
    /// (OIHW conv, (out, in) linear); it decides the fan-in of a kernel.
    enum Layout: String { case keras, torch }

    static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    static func seed(_ name: String, globalSeed: UInt64 = 0) -> UInt64 { fnv1a64(name) ^ globalSeed }

    /// r_i = (top 24 bits - 2^23) * 2^-23: exact float32 values in [-1, 1).
    static func unit(seed: UInt64, count: Int) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(Int64(g.next() >> 40) - (1 << 23)) * (1.0 / 8_388_608.0) }
    }

    static func fanIn(_ shape: [Int], _ layout: Layout) -> Int {
        switch layout {
        case .keras: return shape.dropLast().reduce(1, *)
        case .torch: return shape.dropFirst().reduce(1, *)
        }
    }

    /// The float32 values of one tensor, row-major in `shape` (in `layout`).
    static func tensor(name: String, shape: [Int], kind: Kind, layout: Layout = .keras, globalSeed: UInt64 = 0) -> [Float] {
        let r = unit(seed: seed(name, globalSeed: globalSeed), count: shape.reduce(1, *))
        switch kind {
        case .kernel:
            let s = Float((6.0 / Double(fanIn(shape, layout))).squareRoot())
            return r.map { $0 * s }
        case .bias, .beta, .movingMean:
            return r.map { $0 * 0.1 }
        case .gamma:
            return r.map { let t = $0 * 0.2; return t + 1 }
        case .movingVariance:
            return r.map { let t = $0 * 0.5; return t + 1 }
        case .input:
            return r
        }
    }

    /// +-1 from the top bit of sign stream `k` of `name`.
    static func signs(name: String, k: Int, count: Int, globalSeed: UInt64 = 0) -> [Double] {
        var g = SeededGenerator(seed: seed("sketch\(k):\(name)", globalSeed: globalSeed))
        return (0..<count).map { _ in g.next() >> 63 == 0 ? 1 : -1 }
    }

    static func sampleIndices(name: String, count n: Int, samples: Int, globalSeed: UInt64 = 0) -> [Int] {
        var g = SeededGenerator(seed: seed("samples:\(name)", globalSeed: globalSeed))
        return (0..<samples).map { _ in Int(g.next() % UInt64(n)) }
    }

    /// The summary the dumps store for a large gradient (weightgen.sketch): L2 norm, max |v|,
    /// projections onto K sign vectors and S values at pseudo-random indices; float64 sums.
    struct Sketch {
        var norm: Double
        var maxabs: Double
        var proj: [Double]
        var sampleIndex: [Int]
        var sampleValue: [Double]
    }

    static func sketch(name: String, values: [Float], k: Int = 8, samples: Int = 16, globalSeed: UInt64 = 0) -> Sketch {
        let v = values.map(Double.init)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let maxabs = v.reduce(0) { max($0, abs($1)) }
        let proj = (0..<k).map { j -> Double in
            let s = signs(name: name, k: j, count: v.count, globalSeed: globalSeed)
            var acc = 0.0
            for i in v.indices { acc += s[i] * v[i] }
            return acc
        }
        let idx = sampleIndices(name: name, count: v.count, samples: samples, globalSeed: globalSeed)
        return Sketch(norm: norm, maxabs: maxabs, proj: proj, sampleIndex: idx, sampleValue: idx.map { v[$0] })
    }
}

/// Where scripts/reference lives in this checkout (the tests read the committed files there).
let referenceDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("scripts/reference")

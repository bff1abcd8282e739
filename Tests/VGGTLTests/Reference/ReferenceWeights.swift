import Foundation
import VGGTL

/// The deterministic tensors of scripts/reference/weightgen.py, bit for bit (the spec is in that
/// file and in scripts/reference/README.md): a tensor's values come from SplitMix64 (vggtl's
/// `SeededGenerator`) seeded with the FNV-1a hash of its name, then `r * scale + offset`, so the
/// ~100 MB of weights a reference dump was made with need not be stored. Test-only.
enum ReferenceWeights {
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

    /// float32(sqrt(gain / fan_in)); fan-in: every dimension but the last ("keras": HWIO,
    /// (in, out)) or the first ("torch": OIHW, (out, in)).
    static func kernelScale(shape: [Int], layout: String, gain: Double) -> Float {
        let fanIn = layout == "torch" ? shape.dropFirst().reduce(1, *) : shape.dropLast().reduce(1, *)
        return Float((gain / Double(fanIn)).squareRoot())
    }

    /// The float32 values of one tensor, row-major in `shape`: (r * scale) + offset, negated
    /// where the sign stream's top two bits are 0 when `signed`.
    static func tensor(name: String, shape: [Int], scale: Float, offset: Float = 0, signed: Bool = false,
                       globalSeed: UInt64 = 0) -> [Float] {
        let n = shape.reduce(1, *)
        var v = unit(seed: seed(name, globalSeed: globalSeed), count: n).map { r -> Float in
            let t = r * scale   // two roundings, as numpy does: no fused multiply-add
            return t + offset
        }
        if signed {
            var g = SeededGenerator(seed: seed("sign:" + name, globalSeed: globalSeed))
            for i in 0..<n where g.next() >> 62 == 0 { v[i] = -v[i] }
        }
        return v
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

    /// The summary the dumps store for every gradient (weightgen.sketch): L2 norm, max |v|,
    /// projections onto K sign vectors and S values at pseudo-random indices; float64 sums.
    struct Sketch {
        var norm: Double
        var maxabs: Double
        var proj: [Double]
        var sampleIndex: [Int]
        var sampleValue: [Double]
    }

    static func sketch(name: String, values: [Float], k: Int = 8, samples: Int = 16, globalSeed: UInt64 = 0) -> Sketch {
        var norm2 = 0.0, maxabs = 0.0
        for x in values { let d = Double(x); norm2 += d * d; maxabs = max(maxabs, abs(d)) }
        let proj = (0..<k).map { j -> Double in
            var g = SeededGenerator(seed: seed("sketch\(j):\(name)", globalSeed: globalSeed))
            var acc = 0.0
            for x in values { acc += g.next() >> 63 == 0 ? Double(x) : -Double(x) }
            return acc
        }
        let idx = sampleIndices(name: name, count: values.count, samples: samples, globalSeed: globalSeed)
        return Sketch(norm: norm2.squareRoot(), maxabs: maxabs, proj: proj, sampleIndex: idx,
                      sampleValue: idx.map { Double(values[$0]) })
    }
}

/// Where scripts/reference lives in this checkout (the tests read the committed files there).
let referenceDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("scripts/reference")

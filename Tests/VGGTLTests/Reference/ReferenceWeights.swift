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

    /// The i-th output (from 0) of `SeededGenerator(seed:)`, computed directly: SplitMix64 is a
    /// counter-based generator. Written here because debug builds (swift test) do not inline the
    /// library's generator, and the dumps need ~10^8 of these (ReferenceWeightsTests checks the two agree).
    @inline(__always)
    static func splitmix(_ seed: UInt64, _ i: Int) -> UInt64 {
        var z = seed &+ UInt64(truncatingIfNeeded: i + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// r_i = (top 24 bits - 2^23) * 2^-23: exact float32 values in [-1, 1).
    static func unit(seed: UInt64, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, done in
            for i in 0..<count { out[i] = Float(Int64(splitmix(seed, i) >> 40) - (1 << 23)) * (1.0 / 8_388_608.0) }
            done = count
        }
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
        var v = unit(seed: seed(name, globalSeed: globalSeed), count: n)
        for i in 0..<n {
            let t = v[i] * scale   // two roundings, as numpy does: no fused multiply-add
            v[i] = t + offset
        }
        if signed {
            let s = seed("sign:" + name, globalSeed: globalSeed)
            for i in 0..<n where splitmix(s, i) >> 62 == 0 { v[i] = -v[i] }
        }
        return v
    }

    /// +-1 from the top bit of sign stream `k` of `name`.
    /// sum_i s_i v_i, s_i = +1 when bit 63 - (i mod 64) of splitmix(signSeed, i / 64) is 0, else -1.
    static func project(_ v: UnsafeBufferPointer<Float>, signSeed s: UInt64) -> Double {
        var acc = 0.0, i = 0, word = 0
        while i < v.count {
            var z = splitmix(s, word)
            for j in i..<min(i + 64, v.count) {
                acc += z >> 63 == 0 ? Double(v[j]) : -Double(v[j])
                z <<= 1
            }
            i += 64; word += 1
        }
        return acc
    }

    static func sampleIndices(name: String, count n: Int, samples: Int) -> [Int] {
        let s = seed("samples:\(name)")
        return (0..<samples).map { Int(splitmix(s, $0) % UInt64(n)) }
    }

    /// The summary the dumps store for every gradient (weightgen.sketch): L2 norm, max |v|,
    /// projections onto K sign vectors and S values at pseudo-random indices; float64 sums.
    /// Sketch streams do not depend on a dump's global seed (that one only changes the weights).
    struct Sketch {
        var norm: Double
        var maxabs: Double
        var proj: [Double]
        var sampleIndex: [Int]
        var sampleValue: [Double]
    }

    static func sketch(name: String, values: [Float], k: Int = 8, samples: Int = 16) -> Sketch {
        var norm2 = 0.0, maxabs = 0.0
        for x in values { let d = Double(x); norm2 += d * d; maxabs = max(maxabs, abs(d)) }
        var proj: [Double] = []
        for j in 0..<k {
            let s = seed("sketch\(j):\(name)")
            proj.append(values.withUnsafeBufferPointer { project($0, signSeed: s) })
        }
        let idx = sampleIndices(name: name, count: values.count, samples: samples)
        return Sketch(norm: norm2.squareRoot(), maxabs: maxabs, proj: proj, sampleIndex: idx,
                      sampleValue: idx.map { Double(values[$0]) })
    }
}

/// Where scripts/reference lives in this checkout (the tests read the committed files there).
let referenceDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("scripts/reference")

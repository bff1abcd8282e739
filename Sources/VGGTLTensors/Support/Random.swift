import Foundation

/// A seeded generator (SplitMix64) for weight initialisation and shuffling: the same seed gives
/// the same numbers on every machine, so runs are reproducible and backends start equal.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) * (1.0 / 16_777_216.0)
    }
    /// `count` values of `uniform(lo, hi)` in order, into `out`.
    public mutating func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, lo: Float, hi: Float) {
        var s = state
        let width = hi - lo
        for i in 0..<count {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            out[i] = lo + width * Float(z >> 40) * (1.0 / 16_777_216.0)  // exactly as uniform()
        }
        state = s
    }
    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}


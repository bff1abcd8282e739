import Foundation

/// A 64-bit fingerprint (FNV-1a over 64-bit words) of what the ranks of a job must agree on:
/// data, weights, optimizer state and flags. A check, not a cryptographic hash.
public struct Fingerprint {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    @inline(__always) mutating func mix(_ word: UInt64) {
        value = (value ^ word) &* 0x100_0000_01B3
        value ^= value >> 29
    }

    public mutating func add(_ word: UInt64) { mix(word) }

    public mutating func add(_ words: [UInt64]) {
        mix(UInt64(words.count))
        for w in words { mix(w) }
    }

    public mutating func add(_ text: String) { add(Array(text.utf8)) }

    public mutating func add(_ bytes: [UInt8]) {
        mix(UInt64(bytes.count))
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            for i in 0..<words { mix(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
            var tail: UInt64 = 0
            for i in (words * 8)..<raw.count { tail = tail << 8 | UInt64(raw[i]) }
            mix(tail)
        }
    }

    /// Float bit patterns: -0 and 0, or two NaNs, differ (the ranks must hold the same bits).
    public mutating func add(_ floats: [Float]) {
        mix(UInt64(floats.count))
        floats.withUnsafeBufferPointer { p in
            var i = 0
            while i + 1 < p.count {
                mix(UInt64(p[i].bitPattern) | UInt64(p[i + 1].bitPattern) << 32)
                i += 2
            }
            if i < p.count { mix(UInt64(p[i].bitPattern)) }
        }
    }
}

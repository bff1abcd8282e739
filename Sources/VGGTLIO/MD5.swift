import Foundation

/// MD5 (RFC 1321), only to check downloads against the hashes Keras publishes; not for security.
public struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    public init() { pending.reserveCapacity(64) }

    private static let s: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                      5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                      4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                      6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let k: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        length &+= UInt64(data.count)
        var i = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, data.count)
            pending.append(contentsOf: data[0..<take]); i = take
            if pending.count == 64 { pending.withUnsafeBytes { block($0.baseAddress!) }; pending.removeAll(keepingCapacity: true) }
        }
        while i + 64 <= data.count { block(data.baseAddress! + i); i += 64 }
        if i < data.count { pending.append(contentsOf: data[i...]) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as 32 lowercase hex digits.
    public mutating func finalize() -> String {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
        for j in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(j)))) }
        let saved = length
        tail.withUnsafeBytes { update($0) }
        length = saved
        let words = [state.0, state.1, state.2, state.3]
        return words.flatMap { w in (0..<4).map { String(format: "%02x", (w >> (8 * UInt32($0))) & 0xff) } }.joined()
    }

    public static func hex(_ data: Data) -> String {
        var m = MD5()
        data.withUnsafeBytes { m.update($0) }
        return m.finalize()
    }

    /// The MD5 of a file, read in 4 MiB pieces.
    public static func hex(ofFile url: URL) throws -> String {
        let f = try BinaryFileReader(url, format: "file")
        var m = MD5()
        var buf = [UInt8](repeating: 0, count: 4 << 20)
        var offset = 0
        while offset < f.size {
            let n = min(buf.count, f.size - offset)
            try buf.withUnsafeMutableBytes { try f.read(at: offset, count: n, into: $0.baseAddress!) }
            buf.withUnsafeBytes { m.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += n
        }
        return m.finalize()
    }

    private mutating func block(_ p: UnsafeRawPointer) {
        var (a, b, c, d) = state
        MD5.k.withUnsafeBufferPointer { k in
            MD5.s.withUnsafeBufferPointer { s in
                for i in 0..<64 {
                    var f: UInt32, g: Int
                    switch i {
                    case 0..<16: f = (b & c) | (~b & d); g = i
                    case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) & 15
                    case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) & 15
                    default: f = c ^ (b | ~d); g = (7 * i) & 15
                    }
                    let word = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: g * 4, as: UInt32.self))
                    f = f &+ a &+ k[i] &+ word
                    a = d; d = c; c = b
                    b = b &+ ((f << s[i]) | (f >> (32 - s[i])))
                }
            }
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}

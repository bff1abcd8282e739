import Foundation
import VGGTLTensors

/// Scalar summaries in TensorBoard's event-file format (TFRecord framing around Event protos),
/// written by hand: a few protobuf fields and CRC32C, no TensorFlow. Keras' TensorBoard callback
/// writes DIR/train and DIR/validation with tags epoch_loss and epoch_accuracy; so do we.
public final class TensorBoardWriter {
    private let handle: FileHandle
    public let url: URL

    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        url = directory.appendingPathComponent("events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid()).vggtl")
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let h = try? FileHandle(forWritingTo: url) else {
            throw VGGTLError.invalidSetting(.tensorboard, value: directory.path, expected: "a writable folder")
        }
        handle = h
        var event = Proto()
        event.double(1, Date().timeIntervalSince1970)
        event.bytes(3, Array("brain.Event:2".utf8))
        try write(event.data)
    }

    deinit { try? handle.close() }

    public func scalar(_ tag: String, _ value: Float, step: Int) throws {
        var v = Proto()
        v.bytes(1, Array(tag.utf8))
        v.float(2, value)
        var summary = Proto()
        summary.bytes(1, v.data)
        var event = Proto()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(step))
        event.bytes(5, summary.data)
        try write(event.data)
    }

    private func write(_ record: [UInt8]) throws {
        var out = [UInt8]()
        var len = UInt64(record.count).littleEndian
        let lenBytes = withUnsafeBytes(of: &len) { Array($0) }
        out += lenBytes
        out += le32(maskedCRC32C(lenBytes))
        out += record
        out += le32(maskedCRC32C(record))
        try handle.write(contentsOf: Data(out))
        try handle.synchronize()
    }
}

/// Just enough protobuf encoding for Event/Summary.
struct Proto {
    var data: [UInt8] = []
    mutating func tag(_ field: Int, _ wire: UInt8) { putVarint(UInt64(field << 3) | UInt64(wire)) }
    mutating func putVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { data.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        data.append(UInt8(v))
    }
    mutating func varint(_ field: Int, _ v: UInt64) { tag(field, 0); putVarint(v) }
    mutating func double(_ field: Int, _ v: Double) { tag(field, 1); data += le64(v.bitPattern) }
    mutating func float(_ field: Int, _ v: Float) { tag(field, 5); data += le32(v.bitPattern) }
    mutating func bytes(_ field: Int, _ b: [UInt8]) { tag(field, 2); putVarint(UInt64(b.count)); data += b }
}

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

private let crc32cTable: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
    return c
}

/// CRC-32C (Castagnoli), as TFRecord uses.
func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = crc32cTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}

func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 {
    let c = crc32c(bytes)
    return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
}

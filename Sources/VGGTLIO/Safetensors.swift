import Foundation
import VGGTLTensors

/// The safetensors format (Hugging Face; what PyTorch and timm weights ship as, and our own
/// checkpoints): an 8-byte little-endian header length, a JSON header
/// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
/// raw little-endian data. Reads F32, F16, BF16, F64 and integer/bool tensors as Float; writes F32.
public enum Safetensors {
    static let format = "safetensors"
    static let maxHeaderBytes = 100 << 20

    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    static func dtypeSize(_ d: String) -> Int? {
        switch d {
        case "F64", "I64", "U64": return 8
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    static func dtypeName(_ d: String) -> String {
        switch d {
        case "F64": return "float64"
        case "F32": return "float32"
        case "F16": return "float16"
        case "BF16": return "bfloat16"
        case "BOOL": return "bool"
        default: return d.hasPrefix("I") ? "int\(d.dropFirst())" : d.hasPrefix("U") ? "uint\(d.dropFirst())" : d
        }
    }

    /// Parses and validates the header: dtypes known, offsets within the file, sizes that match
    /// the shapes, no overlaps. Entries come back in data order.
    static func readHeader(_ file: BinaryFileReader) throws -> (entries: [Entry], metadata: [String: String], dataStart: Int) {
        let path = file.url.path
        guard file.size >= 8 else { throw VGGTLError.truncatedFile(file: path, format: format, expectedBytes: 8, actualBytes: file.size) }
        var n: UInt64 = 0
        try file.read(at: 0, count: 8, into: &n)
        let headerLength = UInt64(littleEndian: n)
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw VGGTLError.corruptFile(file: path, format: format, reason: "the header length \(headerLength) is implausible (more than 100 MiB)")
        }
        let dataStart = 8 + Int(headerLength)
        guard dataStart <= file.size else {
            throw VGGTLError.truncatedFile(file: path, format: format, expectedBytes: dataStart, actualBytes: file.size)
        }
        let bytes = try file.bytes(at: 8, count: Int(headerLength))
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes), options: []) } catch {
            throw VGGTLError.corruptFile(file: path, format: format, reason: "the header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw VGGTLError.corruptFile(file: path, format: format, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        let dataLength = file.size - dataStart
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw VGGTLError.corruptFile(file: path, format: format, reason: "__metadata__ is not an object of strings")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw VGGTLError.corruptFile(file: path, format: format, reason: "__metadata__[\(k)] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            func bad(_ reason: String) -> VGGTLError { .corruptFile(file: path, format: format, reason: "tensor \(name): \(reason)") }
            guard let info = value as? [String: Any] else { throw bad("its entry is not an object") }
            guard let dtype = info["dtype"] as? String else { throw bad("no dtype") }
            guard let size = dtypeSize(dtype) else {
                throw VGGTLError.unsupportedFile(file: path, reason: "tensor \(name) has dtype \(dtype); F32, F16, BF16, F64 and integer tensors are supported")
            }
            guard let shape = intArray(info["shape"]), shape.allSatisfy({ $0 >= 0 }) else { throw bad("no valid shape") }
            guard let offsets = intArray(info["data_offsets"]), offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw bad("no valid data_offsets")
            }
            guard let bytes = checkedElementCount(shape, elementSize: size), bytes == offsets[1] - offsets[0] else {
                throw bad("shape \(shape) of \(dtype) needs \(checkedElementCount(shape, elementSize: size).map(String.init) ?? "too many") bytes but data_offsets \(offsets) span \(offsets[1] - offsets[0])")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1]))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        // The size the whole data needs (the header's object order is not the file's).
        if let end = entries.map(\.end).max(), end > dataLength {
            throw VGGTLError.truncatedFile(file: path, format: format, expectedBytes: dataStart + end, actualBytes: file.size)
        }
        for (a, b) in zip(entries, entries.dropFirst()) where b.begin < a.end {
            throw VGGTLError.corruptFile(file: path, format: format, reason: "tensors \(a.name) and \(b.name) overlap")
        }
        return (entries, metadata, dataStart)
    }

    /// JSON numbers that are exact integers.
    static func intArray(_ v: Any?) -> [Int]? {
        guard let a = v as? [Any] else { return nil }
        var out: [Int] = []
        for x in a {
            if type(of: x) == Bool.self { return nil }
            if let i = x as? Int { out.append(i) } else if let d = x as? Double, d.rounded() == d, abs(d) < 9.0e15 { out.append(Int(d)) } else { return nil }
        }
        return out
    }

    public static func describe(_ url: URL) throws -> (entries: [WeightFileEntry], metadata: [String: String]) {
        let file = try BinaryFileReader(url, format: format)
        let h = try readHeader(file)
        return (h.entries.map { WeightFileEntry(storedName: $0.name, name: $0.name, shape: $0.shape, dtype: dtypeName($0.dtype)) }, h.metadata)
    }

    public static func read(_ url: URL) throws -> WeightSet {
        let file = try BinaryFileReader(url, format: format)
        let h = try readHeader(file)
        var set = WeightSet(metadata: h.metadata, source: url.path)
        set.tensors.reserveCapacity(h.entries.count)
        for e in h.entries {
            let count = e.shape.reduce(1, *)
            let offset = h.dataStart + e.begin
            let values: [Float]
            if e.dtype == "F32", isLittleEndianHost() {
                values = try [Float](unsafeUninitializedCapacity: count) { buf, done in
                    if count > 0 { try file.read(at: offset, count: count * 4, into: buf.baseAddress!) }
                    done = count
                }
            } else {
                let raw = try file.bytes(at: offset, count: e.end - e.begin)
                values = raw.withUnsafeBytes { convert($0, dtype: e.dtype, count: count) }
            }
            set.tensors.append((e.name, e.shape, values))
        }
        return set
    }

    static func convert(_ raw: UnsafeRawBufferPointer, dtype: String, count: Int) -> [Float] {
        @inline(__always) func le<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        return [Float](unsafeUninitializedCapacity: count) { out, done in
            switch dtype {
            case "F32": for i in 0..<count { out[i] = Float(bitPattern: le(UInt32.self, i)) }
            case "F64": for i in 0..<count { out[i] = Float(Double(bitPattern: le(UInt64.self, i))) }
            case "F16": for i in 0..<count { out[i] = halfToFloat(le(UInt16.self, i)) }
            case "BF16": for i in 0..<count { out[i] = bfloat16ToFloat(le(UInt16.self, i)) }
            case "I64": for i in 0..<count { out[i] = Float(le(Int64.self, i)) }
            case "I32": for i in 0..<count { out[i] = Float(le(Int32.self, i)) }
            case "I16": for i in 0..<count { out[i] = Float(le(Int16.self, i)) }
            case "I8": for i in 0..<count { out[i] = Float(le(Int8.self, i)) }
            case "U64": for i in 0..<count { out[i] = Float(le(UInt64.self, i)) }
            case "U32": for i in 0..<count { out[i] = Float(le(UInt32.self, i)) }
            case "U16": for i in 0..<count { out[i] = Float(le(UInt16.self, i)) }
            default: for i in 0..<count { out[i] = raw[i] != 0 ? (dtype == "BOOL" ? 1 : Float(raw[i])) : 0 }  // U8, BOOL
            }
            done = count
        }
    }

    /// Writes F32 tensors in the set's order, with `metadata` as __metadata__, atomically.
    public static func write(_ w: WeightSet, to url: URL) throws {
        try w.validate(for: url.path)
        var header = "{"
        var parts: [String] = []
        if !w.metadata.isEmpty {
            let m = w.metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(w.metadata[$0]!))" }
            parts.append("\"__metadata__\":{" + m.joined(separator: ",") + "}")
        }
        var offset = 0
        for t in w.tensors {
            let bytes = t.values.count * 4
            parts.append("\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }   // aligned data, as the reference writer does
        let writer = try AtomicFileWriter(url)
        var n = UInt64(headerBytes.count).littleEndian
        try withUnsafeBytes(of: &n) { try writer.write($0) }
        try writer.write(headerBytes)
        for t in w.tensors { try t.values.withUnsafeBufferPointer { try NPY.writeLittleEndian($0, to: writer) } }
        try writer.commit()
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

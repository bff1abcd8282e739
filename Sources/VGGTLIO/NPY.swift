import Foundation
import VGGTLTensors

/// NumPy's .npy format (what `np.save` writes and `np.load` reads): features and labels.
///
/// Writes float32 ('<f4') and int64 ('<i8') arrays, version 1.0 headers padded to 64 bytes,
/// C order, atomically. Reads float, integer and bool arrays of either byte order with
/// version 1, 2 or 3 headers, as Float.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        try checkCount(values.count, shape: shape, url: url)
        let w = try AtomicFileWriter(url)
        try w.write(header(descr: "<f4", shape: shape))
        try values.withUnsafeBufferPointer { try writeLittleEndian($0, to: w) }
        try w.commit()
    }

    /// Integer labels as '<i8' (NumPy's default integer type).
    public static func writeInt64(_ values: [Int], shape: [Int], to url: URL) throws {
        try checkCount(values.count, shape: shape, url: url)
        let w = try AtomicFileWriter(url)
        try w.write(header(descr: "<i8", shape: shape))
        let le = values.map { Int64($0).littleEndian }
        try le.withUnsafeBytes { try w.write($0) }
        try w.commit()
    }

    /// Reads any real-valued .npy array as Float (int64 labels above 2^24 lose precision).
    public static func read(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        let file = try BinaryFileReader(url, format: "NPY")
        let h = try readHeader(file)
        guard let product = checkedElementCount(h.shape, elementSize: h.dtype.size) else {
            throw VGGTLError.corruptFile(file: url.path, format: "NPY", reason: "shape \(h.shape) is too large")
        }
        let count = product / h.dtype.size
        let expected = h.dataOffset + product
        guard file.size >= expected else {
            throw VGGTLError.truncatedFile(file: url.path, format: "NPY", expectedBytes: expected, actualBytes: file.size)
        }
        if h.dtype.kind == "f", h.dtype.size == 4, h.dtype.littleEndian == isLittleEndianHost() {
            let values = try [Float](unsafeUninitializedCapacity: count) { buf, done in
                if count > 0 { try file.read(at: h.dataOffset, count: count * 4, into: buf.baseAddress!) }
                done = count
            }
            return (h.shape, values)
        }
        let raw = try file.bytes(at: h.dataOffset, count: count * h.dtype.size)
        return (h.shape, try raw.withUnsafeBytes { try convert($0, h.dtype, count: count, url: url) })
    }

    // MARK: header

    struct DType {
        var kind: Character   // f i u b
        var size: Int
        var littleEndian: Bool
        var text: String
    }

    struct Header {
        var dtype: DType
        var shape: [Int]
        var dataOffset: Int
    }

    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        let fixed = magic.count + 2 + 2
        let total = (fixed + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - fixed - dict.utf8.count - 1) + "\n"
        let len = UInt16(dict.utf8.count)
        return magic + [1, 0, UInt8(len & 0xff), UInt8(len >> 8)] + Array(dict.utf8)
    }

    static func readHeader(_ file: BinaryFileReader) throws -> Header {
        let path = file.url.path
        guard file.size >= 10 else {
            throw VGGTLError.truncatedFile(file: path, format: "NPY", expectedBytes: 10, actualBytes: file.size)
        }
        let pre = try file.bytes(at: 0, count: 10)
        guard Array(pre[0..<6]) == magic else {
            throw VGGTLError.corruptFile(file: path, format: "NPY", reason: "it does not start with \\x93NUMPY (np.save writes .npy files)")
        }
        let major = pre[6]
        let headerLength: Int, start: Int
        switch major {
        case 1:
            headerLength = Int(pre[8]) | Int(pre[9]) << 8; start = 10
        case 2, 3:
            let b = try file.bytes(at: 8, count: 4)
            headerLength = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24; start = 12
        default:
            throw VGGTLError.unsupportedFile(file: path, reason: "NPY format version \(major).\(pre[7]) is not supported (1.0, 2.0 and 3.0 are); re-save it with np.save")
        }
        let text = try file.bytes(at: start, count: headerLength)
        guard let dict = String(bytes: text, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw VGGTLError.corruptFile(file: path, format: "NPY", reason: "unreadable header")
        }
        var p = PyLiteralParser(dict)
        let fields: [String: PyLiteral]
        do { fields = try p.parseDict() } catch let reason as PyLiteralParser.Failure {
            throw VGGTLError.corruptFile(file: path, format: "NPY", reason: "bad header \(dict.trimmingCharacters(in: .whitespacesAndNewlines)): \(reason.message)")
        }
        guard case .string(let descr)? = fields["descr"] else {
            throw VGGTLError.unsupportedFile(file: path, reason: "the NPY header has no simple 'descr' (structured arrays are not supported): \(dict)")
        }
        guard case .bool(let fortran)? = fields["fortran_order"] else {
            throw VGGTLError.corruptFile(file: path, format: "NPY", reason: "the header has no fortran_order")
        }
        guard !fortran else {
            throw VGGTLError.unsupportedFile(file: path, reason: "the array is stored in Fortran order; save it in C order: np.save(path, np.ascontiguousarray(a))")
        }
        guard case .tuple(let shape)? = fields["shape"], shape.allSatisfy({ $0 >= 0 }) else {
            throw VGGTLError.corruptFile(file: path, format: "NPY", reason: "the header has no valid shape")
        }
        guard let dtype = parseDescr(descr) else {
            throw VGGTLError.unsupportedFile(file: path, reason: "dtype '\(descr)' is not supported (float16/32/64, int8-64, uint8-64 and bool are)")
        }
        return Header(dtype: dtype, shape: shape, dataOffset: start + headerLength)
    }

    static func parseDescr(_ d: String) -> DType? {
        let c = Array(d)
        guard c.count >= 3, let size = Int(String(c[2...])) else { return nil }
        let order = c[0], kind = c[1]
        guard "<>|=".contains(order) else { return nil }
        let little = order == ">" ? false : (order == "|" || order == "=" ? isLittleEndianHost() : true)
        switch (kind, size) {
        case ("f", 2), ("f", 4), ("f", 8), ("i", 1), ("i", 2), ("i", 4), ("i", 8),
             ("u", 1), ("u", 2), ("u", 4), ("u", 8), ("b", 1):
            return DType(kind: kind, size: size, littleEndian: little, text: d)
        default: return nil
        }
    }

    static func convert(_ raw: UnsafeRawBufferPointer, _ t: DType, count: Int, url: URL) throws -> [Float] {
        @inline(__always) func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
            return t.littleEndian ? T(littleEndian: v) : T(bigEndian: v)
        }
        var out = [Float](repeating: 0, count: count)
        switch (t.kind, t.size) {
        case ("f", 2): for i in 0..<count { out[i] = halfToFloat(load(UInt16.self, i)) }
        case ("f", 4): for i in 0..<count { out[i] = Float(bitPattern: load(UInt32.self, i)) }
        case ("f", 8): for i in 0..<count { out[i] = Float(Double(bitPattern: load(UInt64.self, i))) }
        case ("i", 1): for i in 0..<count { out[i] = Float(load(Int8.self, i)) }
        case ("i", 2): for i in 0..<count { out[i] = Float(load(Int16.self, i)) }
        case ("i", 4): for i in 0..<count { out[i] = Float(load(Int32.self, i)) }
        case ("i", 8): for i in 0..<count { out[i] = Float(load(Int64.self, i)) }
        case ("u", 1): for i in 0..<count { out[i] = Float(load(UInt8.self, i)) }
        case ("u", 2): for i in 0..<count { out[i] = Float(load(UInt16.self, i)) }
        case ("u", 4): for i in 0..<count { out[i] = Float(load(UInt32.self, i)) }
        case ("u", 8): for i in 0..<count { out[i] = Float(load(UInt64.self, i)) }
        case ("b", 1): for i in 0..<count { out[i] = raw[i] != 0 ? 1 : 0 }
        default: throw VGGTLError.unsupportedFile(file: url.path, reason: "dtype '\(t.text)' is not supported")
        }
        return out
    }

    static func checkCount(_ count: Int, shape: [Int], url: URL) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == count else {
            throw VGGTLError.shapeMismatch(what: "values for \(url.path)", expected: shape, got: [count])
        }
    }

    static func writeLittleEndian(_ values: UnsafeBufferPointer<Float>, to w: AtomicFileWriter) throws {
        if isLittleEndianHost() { try w.write(UnsafeRawBufferPointer(values)); return }
        let swapped = values.map { $0.bitPattern.littleEndian }
        try swapped.withUnsafeBytes { try w.write($0) }
    }
}

/// Streams a big float32 .npy (features of a whole dataset) batch by batch. The data goes to a
/// temporary file that `finish` renames to `url` once every value is written: a partially
/// written file never sits under the final name.
public final class NPYWriter {
    public let url: URL
    public let shape: [Int]
    public private(set) var written = 0
    private let writer: AtomicFileWriter
    private var finished = false

    public init(url: URL, shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw VGGTLError.invalidArgument("\(url.path): negative dimension in shape \(shape)") }
        self.url = url; self.shape = shape
        writer = try AtomicFileWriter(url)
        try writer.write(NPY.header(descr: "<f4", shape: shape))
    }

    public var expected: Int { shape.reduce(1, *) }

    public func append(_ values: UnsafeBufferPointer<Float>) throws {
        guard !finished else { throw VGGTLError.invalidArgument("\(url.path): append after finish") }
        guard written + values.count <= expected else {
            throw VGGTLError.invalidArgument("\(url.path): shape \(shape) holds \(expected) values but \(written + values.count) were appended")
        }
        try NPY.writeLittleEndian(values, to: writer)
        written += values.count
    }

    public func append(_ values: [Float]) throws { try values.withUnsafeBufferPointer { try append($0) } }

    public func finish() throws {
        guard !finished else { return }
        guard written == expected else {
            writer.abandon(); finished = true
            throw VGGTLError.invalidArgument("\(url.path): shape \(shape) needs \(expected) values but \(written) were appended; nothing was saved")
        }
        try writer.commit()
        finished = true
    }

    deinit { if !finished { writer.abandon() } }
}

/// IEEE half (binary16) bits to Float.
@inline(__always) func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1f
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        // zero or subnormal: mant * 2^-24
        let v = Float(mant) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

/// bfloat16 bits to Float (the top half of a float32).
@inline(__always) func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// The Python literals in an .npy header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
enum PyLiteral { case string(String), bool(Bool), tuple([Int]), int(Int) }

struct PyLiteralParser {
    struct Failure: Error { let message: String }
    private let c: [Character]
    private var i = 0
    init(_ text: String) { c = Array(text) }

    mutating func parseDict() throws -> [String: PyLiteral] {
        skip(); try expect("{")
        var out: [String: PyLiteral] = [:]
        while true {
            skip()
            if peek == "}" { i += 1; break }
            guard case .string(let key) = try value() else { throw Failure(message: "dictionary keys must be strings") }
            skip(); try expect(":")
            out[key] = try value()
            skip()
            if peek == "," { i += 1; continue }
            skip(); try expect("}"); break
        }
        return out
    }

    private var peek: Character? { i < c.count ? c[i] : nil }
    private mutating func skip() { while let ch = peek, ch.isWhitespace { i += 1 } }
    private mutating func expect(_ ch: Character) throws {
        guard peek == ch else { throw Failure(message: "expected '\(ch)' at character \(i)") }
        i += 1
    }

    private mutating func value() throws -> PyLiteral {
        skip()
        guard let ch = peek else { throw Failure(message: "unexpected end") }
        switch ch {
        case "'", "\"":
            i += 1
            var s = ""
            while let d = peek, d != ch { s.append(d); i += 1 }
            try expect(ch)
            return .string(s)
        case "(":
            i += 1
            var dims: [Int] = []
            while true {
                skip()
                if peek == ")" { i += 1; break }
                guard case .int(let n) = try value() else { throw Failure(message: "shape entries must be integers") }
                dims.append(n)
                skip()
                if peek == "," { i += 1; continue }
                try expect(")"); break
            }
            return .tuple(dims)
        default:
            var word = ""
            while let d = peek, d.isLetter || d.isNumber || d == "-" { word.append(d); i += 1 }
            if word.hasSuffix("L") { word.removeLast() }   // Python 2 longs
            if word == "True" { return .bool(true) }
            if word == "False" { return .bool(false) }
            if let n = Int(word) { return .int(n) }
            throw Failure(message: "unexpected '\(word.isEmpty ? String(ch) : word)' at character \(i)")
        }
    }
}

// The predefined types and property classes are C globals (H5T_NATIVE_FLOAT_g, ...) that
// H5open() sets once, before any other call (see `setup`), and never changes; every use is
// under `HDF5.lock` besides. So they are read as constants.
@preconcurrency import CHDF5
import Foundation
import VGGTLTensors

/// A thin layer over libhdf5 (serial, 1.10): every failure becomes a VGGTLError with the
/// library's own innermost message. The library is not thread-safe; every public entry that
/// uses it runs under `HDF5.locked`.
///
/// Macros such as H5P_DEFAULT or H5T_NATIVE_FLOAT do not import into Swift: H5P_DEFAULT is 0
/// and the predefined types are the *_g globals, valid after H5open().
enum HDF5 {
    static let lock = NSRecursiveLock()
    static let defaultPList: hid_t = 0
    static let all: hid_t = 0
    static let accReadOnly: UInt32 = 0
    static let accTrunc: UInt32 = 2
    static let variableSize = -1   // H5T_VARIABLE is (size_t)-1

    private static let setup: Void = {
        _ = H5open()
        _ = H5Eset_auto2(0, nil, nil)   // no automatic error printing: failures become VGGTLError
    }()

    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        _ = setup
        lock.lock(); defer { lock.unlock() }
        return try body()
    }

    /// The messages on libhdf5's error stack, innermost first, then clears it.
    static func errorMessage() -> String {
        final class Box { var messages: [String] = [] }
        let box = Box()
        let walker: H5E_walk2_t = { _, err, data in
            guard let err, let data, let desc = err.pointee.desc else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            let message = String(cString: desc)
            if !message.isEmpty, !box.messages.contains(message) { box.messages.append(message) }
            return 0
        }
        _ = H5Ewalk2(0, H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(box).toOpaque())
        _ = H5Eclear2(0)
        guard let first = box.messages.first else { return "unknown libhdf5 error" }
        let rest = box.messages.dropFirst().prefix(2)
        return rest.isEmpty ? first : "\(first) (\(rest.joined(separator: "; ")))"
    }
}

/// An open HDF5 identifier closed on deinit.
final class H5ID {
    let id: hid_t
    private let closer: (hid_t) -> herr_t
    init(_ id: hid_t, _ closer: @escaping (hid_t) -> herr_t) { self.id = id; self.closer = closer }
    deinit { _ = closer(id) }
}

/// One HDF5 file, opened for reading or created for writing, and the operations Keras files need.
final class H5File {
    let path: String
    private var fileID: hid_t = -1
    /// Bytes on disk: counts read from a damaged file are checked against it before anything
    /// is allocated (found by fuzzing: an attribute claiming 2^60 strings).
    private(set) var fileSize = Int.max

    deinit { if fileID >= 0 { _ = H5Fclose(fileID) } }

    init(reading url: URL) throws {
        path = url.path
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue { fileSize = size }
        let fapl = H5Pcreate(H5P_CLS_FILE_ACCESS_ID_g)
        defer { if fapl >= 0 { _ = H5Pclose(fapl) } }
        if fapl >= 0 { _ = H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) }
        let id = H5Fopen(url.path, HDF5.accReadOnly, fapl >= 0 ? fapl : HDF5.defaultPList)
        guard id >= 0 else {
            let message = HDF5.errorMessage()
            // "truncated file: eof = 3000, sblock->base_addr = 0, stored_eof = 176640"
            if message.contains("truncated file"), let actual = H5File.number(after: "eof = ", in: message),
               let expected = H5File.number(after: "stored_eof = ", in: message) {
                throw VGGTLError.truncatedFile(file: url.path, format: "HDF5", expectedBytes: expected, actualBytes: actual)
            }
            throw VGGTLError.hdf5(file: url.path, operation: "opening the file", message: message)
        }
        fileID = id
    }

    static func number(after label: String, in text: String) -> Int? {
        guard let r = text.range(of: label) else { return nil }
        return Int(text[r.upperBound...].prefix { $0.isNumber })
    }

    init(creating url: URL) throws {
        path = url.path
        let fapl = H5Pcreate(H5P_CLS_FILE_ACCESS_ID_g)
        defer { if fapl >= 0 { _ = H5Pclose(fapl) } }
        if fapl >= 0 { _ = H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) }
        let id = H5Fcreate(url.path, HDF5.accTrunc, HDF5.defaultPList, fapl >= 0 ? fapl : HDF5.defaultPList)
        guard id >= 0 else { throw VGGTLError.fileWrite(file: url.path, reason: HDF5.errorMessage()) }
        fileID = id
    }

    /// Closes the file (every object opened in it must be released first); an error here means
    /// the file is incomplete.
    func close() throws {
        guard fileID >= 0 else { return }
        let id = fileID
        fileID = -1
        guard H5Fclose(id) >= 0 else { throw VGGTLError.fileWrite(file: path, reason: HDF5.errorMessage()) }
    }

    func fail(_ operation: String) -> VGGTLError {
        .hdf5(file: path, operation: operation, message: HDF5.errorMessage())
    }

    func check(_ id: hid_t, _ operation: @autoclosure () -> String) throws -> hid_t {
        guard id >= 0 else { throw fail(operation()) }
        return id
    }

    func check(_ status: herr_t, _ operation: @autoclosure () -> String) throws {
        guard status >= 0 else { throw fail(operation()) }
    }

    func root() throws -> H5ID { H5ID(try check(H5Gopen2(fileID, "/", HDF5.defaultPList), "opening the root group"), H5Gclose) }

    /// Whether `path` (slash-separated, relative to `loc`) names an existing link, checking each
    /// step so a missing intermediate group is an answer, not an error.
    func exists(_ loc: H5ID, _ path: String) -> Bool {
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            if H5Lexists(loc.id, prefix, HDF5.defaultPList) <= 0 { _ = H5Eclear2(0); return false }
        }
        return !prefix.isEmpty
    }

    func isGroup(_ loc: H5ID, _ path: String) -> Bool {
        guard exists(loc, path) else { return false }
        var info = H5O_info_t()
        guard H5Oget_info_by_name1(loc.id, path, &info, HDF5.defaultPList) >= 0 else { _ = H5Eclear2(0); return false }
        return info.type == H5O_TYPE_GROUP
    }

    func openGroup(_ loc: H5ID, _ path: String) throws -> H5ID {
        H5ID(try check(H5Gopen2(loc.id, path, HDF5.defaultPList), "opening group \(path)"), H5Gclose)
    }

    func createGroup(_ loc: H5ID, _ path: String) throws -> H5ID {
        let lcpl = try linkCreationList()
        return H5ID(try check(H5Gcreate2(loc.id, path, lcpl.id, HDF5.defaultPList, HDF5.defaultPList), "creating group \(path)"), H5Gclose)
    }

    // MARK: attributes

    func hasAttribute(_ loc: H5ID, _ name: String) -> Bool {
        let r = H5Aexists(loc.id, name)
        if r < 0 { _ = H5Eclear2(0) }
        return r > 0
    }

    /// A string or string-array attribute, fixed- or variable-length; an empty attribute of any
    /// type (Keras writes an empty float array for layers without weights) is [].
    func readStrings(_ loc: H5ID, _ name: String, of owner: String) throws -> [String] {
        let what = "reading attribute \(name) of \(owner)"
        let attr = H5ID(try check(H5Aopen(loc.id, name, HDF5.defaultPList), what), H5Aclose)
        let type = H5ID(try check(H5Aget_type(attr.id), what), H5Tclose)
        let space = H5ID(try check(H5Aget_space(attr.id), what), H5Sclose)
        let n = Int(H5Sget_simple_extent_npoints(space.id))
        guard n >= 0 else { throw fail(what) }
        if n == 0 { return [] }
        guard n <= fileSize else {
            throw VGGTLError.corruptFile(file: path, format: "Keras HDF5", reason: "attribute \(name) of \(owner) claims \(n) strings, more than the file can hold")
        }
        guard H5Tget_class(type.id) == H5T_STRING else {
            throw VGGTLError.corruptFile(file: path, format: "Keras HDF5", reason: "attribute \(name) of \(owner) is not a string list")
        }
        let cset = H5Tget_cset(type.id)
        if H5Tis_variable_str(type.id) > 0 {
            let mem = H5ID(try check(H5Tcopy(H5T_C_S1_g), what), H5Tclose)
            try check(H5Tset_size(mem.id, HDF5.variableSize), what)
            try check(H5Tset_cset(mem.id, cset), what)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            try check(H5Aread(attr.id, mem.id, &pointers), what)
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            _ = H5Dvlen_reclaim(mem.id, space.id, HDF5.defaultPList, &pointers)
            return strings
        }
        let size = H5Tget_size(type.id)
        guard size > 0 else { throw fail(what) }
        guard let bytes = checkedElementCount([n, size]), bytes <= fileSize else {
            throw VGGTLError.corruptFile(file: path, format: "Keras HDF5", reason: "attribute \(name) of \(owner) claims \(n) strings of \(size) bytes, more than the file can hold")
        }
        let pad = H5Tget_strpad(type.id)
        var buf = [UInt8](repeating: 0, count: bytes)
        try check(H5Aread(attr.id, type.id, &buf), what)
        return (0..<n).map { i in
            var s = buf[(i * size)..<((i + 1) * size)]
            if let z = s.firstIndex(of: 0) { s = s[..<z] }
            if pad == H5T_STR_SPACEPAD { while s.last == 0x20 { s = s.dropLast() } }
            return String(decoding: s, as: UTF8.self)
        }
    }

    /// Keras splits attributes over 64 KiB into name0, name1, ...: joined here.
    func readChunkedStrings(_ loc: H5ID, _ name: String, of owner: String) throws -> [String]? {
        if hasAttribute(loc, name) { return try readStrings(loc, name, of: owner) }
        guard hasAttribute(loc, "\(name)0") else { return nil }
        var out: [String] = [], k = 0
        while hasAttribute(loc, "\(name)\(k)") { out += try readStrings(loc, "\(name)\(k)", of: owner); k += 1 }
        return out
    }

    /// Every attribute of `loc` that holds a single string (backend, keras_version, ...).
    func scalarStringAttributes(_ loc: H5ID, of owner: String) throws -> [String: String] {
        var info = H5O_info_t()
        try check(H5Oget_info2(loc.id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "listing attributes of \(owner)")
        var out: [String: String] = [:]
        for i in 0..<info.num_attrs {
            let n = H5Aget_name_by_idx(loc.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, HDF5.defaultPList)
            guard n >= 0 else { throw fail("listing attributes of \(owner)") }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            if H5Aget_name_by_idx(loc.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, HDF5.defaultPList) < 0 {
                throw fail("listing attributes of \(owner)")
            }
            let name = String(cString: buf)
            guard isSingleString(loc, name) else { continue }
            if let s = try readStrings(loc, name, of: owner).first { out[name] = s }
        }
        return out
    }

    private func isSingleString(_ loc: H5ID, _ name: String) -> Bool {
        let attr = H5Aopen(loc.id, name, HDF5.defaultPList)
        guard attr >= 0 else { _ = H5Eclear2(0); return false }
        defer { _ = H5Aclose(attr) }
        let type = H5Aget_type(attr), space = H5Aget_space(attr)
        defer { _ = H5Tclose(type); _ = H5Sclose(space) }
        return H5Tget_class(type) == H5T_STRING && H5Sget_simple_extent_npoints(space) == 1
            && H5Sget_simple_extent_ndims(space) <= 1 && !name.hasPrefix("layer_names")
    }

    /// Writes a list of strings (or one string as a scalar), fixed-length NUL-padded as h5py
    /// writes NumPy bytes arrays, or variable-length UTF-8 as h5py writes Python str lists.
    func writeStrings(_ loc: H5ID, _ name: String, _ values: [String], variableLength: Bool, scalar: Bool = false) throws {
        let what = "writing attribute \(name)"
        if values.isEmpty {
            // What Keras writes for a layer without weights: np.asarray([]) (float64, shape (0,)).
            var dims: [hsize_t] = [0]
            let space = H5ID(try check(H5Screate_simple(1, &dims, nil), what), H5Sclose)
            let attr = H5ID(try check(H5Acreate2(loc.id, name, H5T_IEEE_F64LE_g, space.id, HDF5.defaultPList, HDF5.defaultPList), what), H5Aclose)
            _ = attr
            return
        }
        precondition(!scalar || values.count == 1)
        var dims: [hsize_t] = [hsize_t(values.count)]
        let space = H5ID(try check(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil), what), H5Sclose)
        let type = H5ID(try check(H5Tcopy(H5T_C_S1_g), what), H5Tclose)
        if variableLength {
            try check(H5Tset_size(type.id, HDF5.variableSize), what)
            try check(H5Tset_cset(type.id, H5T_CSET_UTF8), what)
            let attr = H5ID(try check(H5Acreate2(loc.id, name, type.id, space.id, HDF5.defaultPList, HDF5.defaultPList), what), H5Aclose)
            let cstrings = values.map { strdup($0) }
            defer { cstrings.forEach { free($0) } }
            var pointers: [UnsafePointer<CChar>?] = cstrings.map { UnsafePointer($0) }
            try check(H5Awrite(attr.id, type.id, &pointers), what)
        } else {
            let size = max(1, values.map(\.utf8.count).max() ?? 1)
            try check(H5Tset_size(type.id, size), what)
            try check(H5Tset_strpad(type.id, H5T_STR_NULLPAD), what)
            let attr = H5ID(try check(H5Acreate2(loc.id, name, type.id, space.id, HDF5.defaultPList, HDF5.defaultPList), what), H5Aclose)
            var buf = [UInt8](repeating: 0, count: values.count * size)
            for (i, v) in values.enumerated() { buf.replaceSubrange((i * size)..<(i * size + v.utf8.count), with: Array(v.utf8)) }
            try check(H5Awrite(attr.id, type.id, &buf), what)
        }
    }

    // MARK: datasets

    func linkCreationList() throws -> H5ID {
        let lcpl = H5ID(try check(H5Pcreate(H5P_CLS_LINK_CREATE_ID_g), "creating a property list"), H5Pclose)
        try check(H5Pset_create_intermediate_group(lcpl.id, 1), "creating a property list")
        return lcpl
    }

    /// Shape and dtype name ("float32", "float16", "int64", ...) of a dataset.
    func datasetInfo(_ loc: H5ID, _ path: String) throws -> (shape: [Int], dtype: String, dataset: H5ID) {
        let what = "reading dataset \(path)"
        let ds = H5ID(try check(H5Dopen2(loc.id, path, HDF5.defaultPList), what), H5Dclose)
        let space = H5ID(try check(H5Dget_space(ds.id), what), H5Sclose)
        let rank = Int(H5Sget_simple_extent_ndims(space.id))
        guard rank >= 0 else { throw fail(what) }
        var dims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 { try check(H5Sget_simple_extent_dims(space.id, &dims, nil), what) }
        let type = H5ID(try check(H5Dget_type(ds.id), what), H5Tclose)
        let size = H5Tget_size(type.id)
        let dtype: String
        switch H5Tget_class(type.id) {
        case H5T_FLOAT: dtype = "float\(size * 8)"
        case H5T_INTEGER: dtype = (H5Tget_sign(type.id) == H5T_SGN_NONE ? "uint" : "int") + "\(size * 8)"
        default:
            throw VGGTLError.unsupportedFile(file: self.path, reason: "dataset \(path) does not hold numbers (HDF5 class \(H5Tget_class(type.id).rawValue))")
        }
        let shape = dims.compactMap { Int(exactly: $0) }
        guard shape.count == dims.count else {
            throw VGGTLError.corruptFile(file: self.path, format: "HDF5", reason: "dataset \(path) has an impossible shape \(dims)")
        }
        return (shape, dtype, ds)
    }

    /// A numeric dataset converted to Float by libhdf5 (float16/64 and integers included).
    func readFloats(_ loc: H5ID, _ path: String) throws -> (shape: [Int], dtype: String, values: [Float]) {
        let (shape, dtype, ds) = try datasetInfo(loc, path)
        // Keras writes weights uncompressed; even compressed (deflate, at most ~1000:1) they
        // cannot hold more than this.
        guard let count = checkedElementCount(shape), count <= Int(Int32.max) * 16, count / 1024 <= fileSize else {
            throw VGGTLError.corruptFile(file: self.path, format: "HDF5", reason: "dataset \(path) has an implausible shape \(shape)")
        }
        var status: herr_t = 0
        let values = [Float](unsafeUninitializedCapacity: count) { buf, done in
            if count > 0 { status = H5Dread(ds.id, H5T_NATIVE_FLOAT_g, HDF5.all, HDF5.all, HDF5.defaultPList, buf.baseAddress) }
            done = status >= 0 ? count : 0
        }
        guard status >= 0 else { throw fail("reading dataset \(path)") }
        return (shape, dtype, values)
    }

    /// A float32 little-endian dataset at `path` under `loc`, intermediate groups created.
    func writeFloats(_ loc: H5ID, _ path: String, shape: [Int], values: [Float]) throws {
        let what = "writing dataset \(path)"
        let lcpl = try linkCreationList()
        var dims = shape.map { hsize_t($0) }
        let space = H5ID(try check(shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil), what), H5Sclose)
        let ds = H5ID(try check(H5Dcreate2(loc.id, path, H5T_IEEE_F32LE_g, space.id, lcpl.id, HDF5.defaultPList, HDF5.defaultPList), what), H5Dclose)
        if !values.isEmpty {
            try values.withUnsafeBufferPointer {
                try check(H5Dwrite(ds.id, H5T_NATIVE_FLOAT_g, HDF5.all, HDF5.all, HDF5.defaultPList, $0.baseAddress), what)
            }
        }
    }
}

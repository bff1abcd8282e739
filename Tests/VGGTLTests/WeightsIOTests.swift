import Foundation
import XCTest
import VGGTL

/// Weight and array files: Keras HDF5 (both layouts, both string kinds), safetensors (torch and
/// Keras names), .npy; forward passes after loading against references computed here in Double
/// from the files' raw values; round trips bit for bit; truncated and corrupt files.
final class WeightsIOTests: VGGTLTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func path(_ name: String) -> URL { dir.appendingPathComponent(name) }

    // MARK: - npy

    func testNPYWriteThenReadAndHeaderLayout() throws {
        for shape in [[2, 3, 4], [5], [], [0, 3]] {
            let n = shape.reduce(1, *)
            let values = randomArray(n, seed: UInt64(n + 1))
            let url = path("a\(shape.count).npy")
            try NPY.write(values, shape: shape, to: url)
            let back = try NPY.read(url)
            XCTAssertEqual(back.shape, shape)
            XCTAssertEqual(back.values.map(\.bitPattern), values.map(\.bitPattern))
            let bytes = [UInt8](try Data(contentsOf: url))
            XCTAssertEqual(Array(bytes[0..<8]), [0x93] + Array("NUMPY".utf8) + [1, 0])
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0, "header padded to 64 bytes")
            let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': "), header)
            XCTAssertTrue(header.hasSuffix("\n"))
            let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
            XCTAssertTrue(header.contains("'shape': \(dims)"), header)
            XCTAssertEqual(bytes.count, 10 + headerLength + 4 * n)
        }
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasPrefix(".") }, "no temporary files left")
    }

    func testNPYInt64Labels() throws {
        let url = path("labels.npy")
        try NPY.writeInt64([3, 0, 1, 2, 7], shape: [5], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let start = 10 + (Int(bytes[8]) | Int(bytes[9]) << 8)
        XCTAssertEqual(start % 64, 0)
        XCTAssertTrue(String(decoding: bytes[10..<start], as: UTF8.self).contains("'descr': '<i8'"))
        XCTAssertEqual(Array(bytes[start..<(start + 8)]), [3, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(bytes.count, start + 40)
        XCTAssertEqual(try NPY.read(url).values, [3, 0, 1, 2, 7])
    }

    func testNPYFilesWrittenByNumPy() throws {
        let f64 = path("f64.npy"), labels = path("labels.npy")
        try fixture(PythonFixtures.float64NPY).write(to: f64)
        try fixture(PythonFixtures.labelsNPY).write(to: labels)
        let a = try NPY.read(f64)
        XCTAssertEqual(a.shape, [2, 3, 4])
        XCTAssertEqual(a.values, fixtureValues(24, seed: 15))
        let l = try NPY.read(labels)
        XCTAssertEqual(l.shape, [5])
        XCTAssertEqual(l.values, [3, 0, 1, 2, 7])
    }

    /// Hand-made files for each dtype, byte order and header version.
    func testNPYDtypesByteOrdersAndVersions() throws {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        let cases: [(descr: String, data: [UInt8], expected: [Float])] = [
            ("<f4", [1.5, -2, 0.25].flatMap { le(Float($0).bitPattern) }, [1.5, -2, 0.25]),
            (">f4", [1.5, -2, 0.25].flatMap { be(Float($0).bitPattern) }, [1.5, -2, 0.25]),
            ("<f8", [1.5, -2, 1e-3].flatMap { le(Double($0).bitPattern) }, [1.5, -2, Float(1e-3)]),
            (">f8", [3.0, 4.0].flatMap { be(Double($0).bitPattern) }, [3, 4]),
            ("<f2", [0x3c00, 0xc000, 0x3800, 0x0001].flatMap { le(UInt16($0)) }, [1, -2, 0.5, Float(5.960464477539063e-08)]),
            ("<i8", [-5, 0, 1 << 20].flatMap { le(Int64($0)) }, [-5, 0, 1_048_576]),
            (">i8", [-5, 7].flatMap { be(Int64($0)) }, [-5, 7]),
            ("<i4", [-7, 9].flatMap { le(Int32($0)) }, [-7, 9]),
            ("|u1", [0, 200, 255], [0, 200, 255]),
            ("|i1", [0xff, 5], [-1, 5]),
            ("|b1", [0, 1, 1, 0], [0, 1, 1, 0]),
            ("<u2", le(UInt16(65535)), [65535]),
        ]
        for (k, c) in cases.enumerated() {
            let count = c.expected.count
            for version: UInt8 in [1, 2, 3] {
                let url = path("h\(k)-v\(version).npy")
                try handMadeNPY(descr: c.descr, shape: "(\(count),)", data: c.data, version: version).write(to: url)
                let r = try NPY.read(url)
                XCTAssertEqual(r.shape, [count], c.descr)
                XCTAssertEqual(r.values, c.expected, "\(c.descr) v\(version)")
            }
        }
        // Python 2 style header with L suffixes and no trailing comma; a 2-D shape.
        let url = path("py2.npy")
        try handMadeNPY(descr: "<f4", shape: "(2L, 1L)", data: [1, 2].flatMap { le(Float($0).bitPattern) }, version: 1, trailingComma: false).write(to: url)
        XCTAssertEqual(try NPY.read(url).shape, [2, 1])
    }

    func testNPYClearErrors() throws {
        let fortran = path("fortran.npy")
        try handMadeNPY(descr: "<f4", shape: "(2, 2)", data: [UInt8](repeating: 0, count: 16), version: 1, fortran: true).write(to: fortran)
        let e1 = vggtlError { _ = try NPY.read(fortran) }
        XCTAssertTrue(e1.contains("Fortran order") && e1.contains(fortran.path), e1)

        let structured = path("structured.npy")
        let header = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"
        try handMadeNPY(rawHeader: header, data: [0, 0, 0, 0], version: 1).write(to: structured)
        XCTAssertTrue(vggtlError { _ = try NPY.read(structured) }.contains("structured"))

        let complex = path("complex.npy")
        try handMadeNPY(descr: "<c8", shape: "(1,)", data: [UInt8](repeating: 0, count: 8), version: 1).write(to: complex)
        XCTAssertTrue(vggtlError { _ = try NPY.read(complex) }.contains("<c8"))

        let notNPY = path("text.npy")
        try Data("hello world, not an array".utf8).write(to: notNPY)
        XCTAssertTrue(vggtlError { _ = try NPY.read(notNPY) }.contains("NUMPY"))
    }

    func testNPYTruncatedGivesExpectedAndActualBytes() throws {
        let url = path("full.npy")
        try NPY.write(randomArray(30, seed: 3), shape: [5, 6], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let start = 10 + (Int(bytes[8]) | Int(bytes[9]) << 8)
        XCTAssertEqual(bytes.count, start + 120)
        let cut = path("cut.npy")
        try Data(bytes[0..<(start + 100)]).write(to: cut)
        let message = vggtlError { _ = try NPY.read(cut) }
        XCTAssertTrue(message.contains("needs \(start + 120) bytes but the file has \(start + 100)") && message.contains("truncated"), message)
        for n in [0, 1, 5, 9, 10, 11, 40, 63, 64, 65, start - 1, start, start + 1, bytes.count - 1] {
            try Data(bytes[0..<n]).write(to: cut)
            _ = vggtlError("npy cut at \(n)") { _ = try NPY.read(cut) }
        }
    }

    func testNPYWriterStreamsAndOnlyPublishesWhenComplete() throws {
        let url = path("features.npy")
        let values = randomArray(4 * 3 * 2, seed: 9)
        let w = try NPYWriter(url: url, shape: [4, 3, 2])
        for b in 0..<4 {
            try values[(b * 6)..<(b * 6 + 6)].withUnsafeBufferPointer { try w.append($0) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "no file under the final name before finish")
        }
        try w.finish()
        let r = try NPY.read(url)
        XCTAssertEqual(r.shape, [4, 3, 2])
        XCTAssertEqual(r.values, values)

        // Too few values: an error and nothing under the final name.
        let short = path("short.npy")
        let w2 = try NPYWriter(url: short, shape: [2, 3])
        try [Float](repeating: 1, count: 4).withUnsafeBufferPointer { try w2.append($0) }
        XCTAssertTrue(vggtlError { try w2.finish() }.contains("6 values"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: short.path))
        // Too many values.
        let w3 = try NPYWriter(url: path("long.npy"), shape: [2])
        _ = vggtlError { try [Float](repeating: 1, count: 3).withUnsafeBufferPointer { try w3.append($0) } }
        // An abandoned writer leaves no temporary file behind.
        do { _ = try NPYWriter(url: path("abandoned.npy"), shape: [1]) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") && !$0.contains("long.npy") }
        XCTAssertEqual(leftovers, [])
    }

    // MARK: - safetensors

    func testSafetensorsRoundTripOrderMetadataAndSpecialValues() throws {
        var set = WeightSet(metadata: ["classes": "cat,dog", "format": "pt", "quote\"key": "line\nbreak"])
        set.tensors = [("z_last_name_first", [2, 2], [1, -0.0, .infinity, -.infinity]),
                       ("a/b", [3], [Float.nan, Float(bitPattern: 0x7fc0_1234), Float.leastNonzeroMagnitude]),
                       ("scalar", [], [42]),
                       ("empty", [0, 4], [])]
        let url = path("x.safetensors")
        try Safetensors.write(set, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data aligned to 8 bytes")
        let back = try Safetensors.read(url)
        XCTAssertEqual(back.names, set.names, "order kept")
        XCTAssertEqual(back.metadata, set.metadata)
        for (a, b) in zip(set.tensors, back.tensors) {
            XCTAssertEqual(a.shape, b.shape, a.name)
            XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), a.name)
        }
        // The generic entry points detect the format.
        XCTAssertEqual(try WeightFile.detectFormat(url), .safetensors)
        XCTAssertEqual(try WeightFile.load(url).names, set.names)
    }

    func testSafetensorsDtypesWrittenByPython() throws {
        let url = path("dtypes.safetensors")
        try fixture(PythonFixtures.dtypesSafetensors).write(to: url)
        let set = try WeightFile.load(url)
        XCTAssertEqual(set["a16"]?.shape, [2, 3])
        XCTAssertEqual(set["a16"]?.values, fixtureValues(6, seed: 13))
        XCTAssertEqual(set["a64"]?.values, fixtureValues(5, seed: 14))
        XCTAssertEqual(set["i64"]?.values, [-3, -2, -1, 0, 1, 2])
        let summary = try WeightFile.describe(url)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: summary.entries.map { ($0.name, $0.dtype) }),
                       ["a16": "float16", "a64": "float64", "i64": "int64"])
    }

    func testSafetensorsHandMadeBF16F16F64() throws {
        let header = #"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"h":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#
        var data: [UInt8] = []
        for v: Float in [1.5, -3] { let b = v.bitPattern >> 16; data += [UInt8(b & 0xff), UInt8(b >> 8)] }
        data += [0x00, 0x3c, 0x00, 0xc2]                                       // half 1.0, -3.0
        data += withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { Array($0) }
        let url = path("hand.safetensors")
        try safetensorsFile(header: header, data: data).write(to: url)
        let set = try Safetensors.read(url)
        XCTAssertEqual(set.names, ["b", "h", "d"], "data order")
        XCTAssertEqual(set["b"]?.values, [1.5, -3])
        XCTAssertEqual(set["h"]?.values, [1, -3])
        XCTAssertEqual(set["d"]?.values, [Float(0.1)])
    }

    func testSafetensorsCorruptAndTruncatedAreErrors() throws {
        let url = path("good.safetensors")
        try Safetensors.write(WeightSet(tensors: [("w", [3, 4], randomArray(12, seed: 1)), ("b", [4], randomArray(4, seed: 2))]), to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let cut = path("cut.safetensors")
        for n in Array(0..<20) + Array(stride(from: 20, to: bytes.count, by: 7)) + [bytes.count - 1] {
            try Data(bytes[0..<n]).write(to: cut)
            _ = vggtlError("safetensors cut at \(n)") { _ = try Safetensors.read(cut) }
            _ = vggtlError("safetensors cut at \(n) (generic)") { _ = try WeightFile.load(cut) }
        }
        let t = vggtlError { try Data(bytes.dropLast(5)).write(to: cut); _ = try Safetensors.read(cut) }
        XCTAssertTrue(t.contains("truncated") && t.contains("\(bytes.count)") && t.contains("\(bytes.count - 5)"), t)

        let bad: [(String, String, [UInt8])] = [
            ("not JSON", "{nope", []),
            ("array", "[1,2]", []),
            ("size mismatch", #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, [UInt8](repeating: 0, count: 12)),
            ("beyond the end", #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 8)),
            ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, [UInt8](repeating: 0, count: 12)),
            ("negative", #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
            ("fractional", #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
            ("dtype", #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8)),
            ("metadata", #"{"__metadata__":{"a":1}}"#, []),
            ("no shape", #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
        ]
        for (what, header, data) in bad {
            let u = path("bad.safetensors")
            try safetensorsFile(header: header, data: data).write(to: u)
            _ = vggtlError(what) { _ = try Safetensors.read(u) }
        }
        // A header length far beyond the file.
        var huge = [UInt8](repeating: 0xff, count: 8) + Array("{}".utf8)
        huge[7] = 0x00
        let u = path("huge.safetensors")
        try Data(huge).write(to: u)
        _ = vggtlError("huge header") { _ = try Safetensors.read(u) }
    }

    // MARK: - Keras HDF5

    /// Files h5py wrote in Keras' two layouts load with canonical names and the right values.
    func testKerasFilesWrittenByH5py() throws {
        for (name, blob) in [("legacy.h5", PythonFixtures.kerasLegacyH5), ("keras2.h5", PythonFixtures.keras2H5)] {
            let url = path(name)
            try fixture(blob).write(to: url)
            XCTAssertEqual(try WeightFile.detectFormat(url), .h5)
            let set = try WeightFile.load(url)
            XCTAssertEqual(set.names, ["block1_conv1/kernel", "block1_conv1/bias", "fc1/kernel", "fc1/bias"], name)
            XCTAssertEqual(set["block1_conv1/kernel"]?.shape, [3, 3, 2, 3])
            XCTAssertEqual(set["block1_conv1/kernel"]?.values, fixtureValues(54, seed: 1))
            XCTAssertEqual(set["block1_conv1/bias"]?.values, fixtureValues(3, seed: 2))
            XCTAssertEqual(set["fc1/kernel"]?.shape, [12, 2])
            XCTAssertEqual(set["fc1/kernel"]?.values, fixtureValues(24, seed: 3))
            XCTAssertEqual(set["fc1/bias"]?.values, fixtureValues(2, seed: 4))

            let model = try tinyKerasModel(seed: 77)
            try loadWeights(set, into: model.layers)
            let x = fixtureValues(32, seed: 20)
            let y = try model.forward(Tensor(x, shape: [1, 4, 4, 2], on: cpuDevice), .inference).toArray()
            let reference = referenceKerasTiny(x: x, h: 4, w: 4, c: 2, set: set)
            assertClose(y, reference, tol: 1e-4, "\(name) forward")
        }
        let summary = try WeightFile.describe(path("legacy.h5"))
        XCTAssertEqual(summary.entries.map(\.storedName), ["block1_conv1_W_1:0", "block1_conv1_b_1:0", "fc1_W_1:0", "fc1_b_1:0"])
        let k2 = try WeightFile.describe(path("keras2.h5"))
        XCTAssertEqual(k2.entries.map(\.dtype), ["float32", "float64", "float16", "float32"])
        XCTAssertEqual(k2.metadata["keras_version"], "2.13.1")
    }

    /// Our writer in every layout (Keras 2 / Keras 1 names, fixed / variable-length strings,
    /// save_weights / model.save grouping): load, forward against the reference, bit-identical values.
    func testKerasLayoutsWrittenByTheTestsLoadAndRunForward() throws {
        let set = tinyWeights(seed: 5)
        let x = randomArray(2 * 4 * 4 * 2, seed: 6)
        let reference = referenceKerasTiny(x: x, h: 4, w: 4, c: 2, set: set, batch: 2)
        for legacy in [false, true] {
            for vlen in [false, true] {
                for modelWeights in [false, true] {
                    let what = "legacy \(legacy) vlen \(vlen) model_weights \(modelWeights)"
                    let url = path("tiny-\(legacy)-\(vlen)-\(modelWeights).h5")
                    try KerasH5.write(set, to: url, options: .init(legacyNaming: legacy, variableLengthStrings: vlen,
                                                                   layerNames: ["input_1", "block1_conv1", "block1_pool", "flatten", "fc1"],
                                                                   modelWeightsGroup: modelWeights))
                    let stored = try WeightFile.describe(url).entries.map(\.storedName)
                    XCTAssertEqual(stored.first, legacy ? "block1_conv1_W_1:0" : "block1_conv1/kernel:0", what)
                    let back = try WeightFile.load(url)
                    XCTAssertEqual(back.names, set.names, what)
                    XCTAssertEqual(back.tensors.map(\.shape), set.tensors.map(\.shape), what)
                    XCTAssertEqual(back.tensors.map { $0.values.map(\.bitPattern) }, set.tensors.map { $0.values.map(\.bitPattern) }, what)
                    let model = try tinyKerasModel(seed: 99)
                    let r = try loadWeights(back, into: model.layers)
                    XCTAssertEqual(r.loaded, set.names)
                    XCTAssertEqual(r.skipped, [])
                    let y = try model.forward(Tensor(x, shape: [2, 4, 4, 2], on: cpuDevice), .inference).toArray()
                    assertClose(y, reference, tol: 1e-4, what)
                }
            }
        }
    }

    func testBatchNormWeightsByNameAndKeras1Position() throws {
        let c = 3
        let set = WeightSet(tensors: [("bn/gamma", [c], [1, 2, 3]), ("bn/beta", [c], [0.5, 0, -0.5]),
                                      ("bn/moving_mean", [c], [0.1, 0.2, 0.3]), ("bn/moving_variance", [c], [1, 4, 9])])
        for legacy in [false, true] {
            let url = path("bn-\(legacy).h5")
            try KerasH5.write(set, to: url, options: .init(legacyNaming: legacy))
            let back = try WeightFile.load(url)
            XCTAssertEqual(back.names, set.names)
            let bn = try BatchNormalization("bn", channels: c, on: cpuDevice)
            try loadWeights(back, into: [bn])
            XCTAssertEqual(bn.movingVariance.toArray(), [1, 4, 9])
            XCTAssertEqual(bn.gamma!.value.toArray(), [1, 2, 3])
        }
    }

    func testKerasTruncatedAndDamagedFilesAreErrors() throws {
        let url = path("t.h5")
        try KerasH5.write(tinyWeights(seed: 3), to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let cut = path("cut.h5")
        for n in [0, 1, 8, 9, 100, 511, 512, 2048] + Array(stride(from: 4096, to: bytes.count, by: bytes.count / 9)) + [bytes.count - 1] {
            try Data(bytes[0..<n]).write(to: cut)
            _ = vggtlError("h5 cut at \(n)") { _ = try WeightFile.load(cut) }
        }
        try Data(bytes.dropLast(1)).write(to: cut)
        let message = vggtlError { _ = try KerasH5.read(cut) }
        XCTAssertTrue(message.contains(cut.path) && message.contains("truncated")
                      && message.contains("needs \(bytes.count) bytes but the file has \(bytes.count - 1)"), message)

        // An HDF5 file that is not a Keras file.
        let plain = path("plain.h5")
        try KerasH5.write(tinyWeights(seed: 3), to: plain)
        var damaged = [UInt8](try Data(contentsOf: plain))
        let attr = Array("layer_names".utf8)
        if let at = (0..<(damaged.count - attr.count)).first(where: { Array(damaged[$0..<($0 + attr.count)]) == attr }) {
            damaged[at] = UInt8(ascii: "X")   // the attribute is now "Xayer_names"
        }
        try Data(damaged).write(to: plain)
        XCTAssertTrue(vggtlError { _ = try WeightFile.load(plain) }.contains("layer_names"))
    }

    func testKeras3WeightsFileIsAClearError() throws {
        let url = path("model.weights.h5")
        try fixture(PythonFixtures.keras3WeightsH5).write(to: url)
        let message = vggtlError { _ = try WeightFile.load(url) }
        XCTAssertTrue(message.contains("Keras 3") && message.contains("model.save('model.h5')"), message)
    }

    func testDetectionMessagesForOtherFiles() throws {
        let zip = path("model.pth")
        try Data([0x50, 0x4b, 0x03, 0x04] + [UInt8](repeating: 0, count: 60)).write(to: zip)
        XCTAssertTrue(vggtlError { _ = try WeightFile.load(zip) }.contains("safetensors"))
        let npy = path("a.npy")
        try NPY.write([1, 2], shape: [2], to: npy)
        XCTAssertTrue(vggtlError { _ = try WeightFile.load(npy) }.contains(".npy"))
        let text = path("notes.txt")
        try Data("these are not weights at all".utf8).write(to: text)
        XCTAssertTrue(vggtlError { _ = try WeightFile.load(text) }.contains("neither"))
        XCTAssertTrue(vggtlError { _ = try WeightFile.load(path("missing.h5")) }.contains("missing.h5"))
    }

    // MARK: - loading into models

    func testShapeMismatchNamesLayerBothShapesAndFile() throws {
        let url = path("w.h5")
        try KerasH5.write(WeightSet(tensors: [("block1_conv1/kernel", [3, 3, 3, 64], randomArray(1728, seed: 1)),
                                              ("block1_conv1/bias", [64], randomArray(64, seed: 2))]), to: url)
        var rng = SeededGenerator(seed: 1)
        let conv = try Conv2D("block1_conv1", inChannels: 4, filters: 64, on: cpuDevice, rng: &rng)
        let before = conv.kernel.value.toArray()
        let message = vggtlError { try loadWeights(WeightFile.load(url), into: [conv]) }
        XCTAssertTrue(message.contains("block1_conv1/kernel: file has shape [3,3,3,64], model expects [3,3,4,64] (\(url.path))"), message)
        XCTAssertEqual(conv.kernel.value.toArray(), before, "a failed load changes nothing")
    }

    func testMissingAndExtraWeights() throws {
        let url = path("trunk.safetensors")
        let trunk = tinyWeights(seed: 2)
        let convOnly = WeightSet(tensors: trunk.tensors.filter { $0.name.hasPrefix("block1") } + [("fc9/kernel", [2, 2], [1, 2, 3, 4])])
        try WeightFile.save(convOnly, to: url, format: .safetensors)
        let model = try tinyKerasModel(seed: 4)
        let fc1 = model.layers.last as! Dense
        let fc1Before = fc1.kernel.value.toArray()
        let message = cliError { try loadWeights(WeightFile.load(url), into: model.layers) }
        XCTAssertTrue(message.contains("fc1/kernel") && message.contains("--allow-missing-weights") && message.contains(url.path), message)
        let r = try loadWeights(WeightFile.load(url), into: model.layers, skipMissing: true)
        XCTAssertEqual(r.loaded, ["block1_conv1/kernel", "block1_conv1/bias"])
        XCTAssertEqual(r.skipped, ["fc1/kernel", "fc1/bias"])
        XCTAssertEqual(fc1.kernel.value.toArray(), fc1Before, "head layers absent from the file are kept")
        XCTAssertEqual((model.layers[0] as! Conv2D).kernel.value.toArray(), trunk["block1_conv1/kernel"]!.values)
        // Nothing matching at all is an error even with skipMissing.
        let other = WeightSet(tensors: [("dense_7/kernel", [1], [1])], source: "other.h5")
        XCTAssertTrue(vggtlError { try loadWeights(other, into: model.layers, skipMissing: true) }.contains("dense_7"))
    }

    // MARK: - PyTorch names

    /// A tiny VGG-like written by Python's safetensors in torchvision naming: conv (OIHW), ReLU,
    /// max pool, flatten in torch's NCHW order, classifier.0/3/6. Our NHWC model loaded from it
    /// must match a reference computed here in torch's own NCHW convention.
    func testTorchvisionSafetensorsFromPythonMatchesNCHWReference() throws {
        let url = path("torch.safetensors")
        try fixture(PythonFixtures.torchSafetensors).write(to: url)
        let raw = try WeightFile.load(url)
        XCTAssertTrue(TorchVGG16.looksLikeTorch(raw))
        XCTAssertEqual(raw["features.0.weight"]?.values, fixtureValues(54, seed: 5))
        try checkTorchForward(raw, what: "python fixture")
    }

    /// The same with a file the test writes: a bigger channel count, so the fc1 permutation is
    /// not accidentally the identity, and batch 2.
    func testTorchFC1PermutationNCHWToNHWC() throws {
        let (c, h, w, f) = (3, 6, 6, 5)   // after the conv: 6x6x5, pool -> 3x3x5 = 45 features
        var t = WeightSet(metadata: ["format": "pt"])
        t.tensors = [("features.0.weight", [f, c, 3, 3], randomArray(f * c * 9, seed: 11)),
                     ("features.0.bias", [f], randomArray(f, seed: 12)),
                     ("classifier.0.weight", [7, 45], randomArray(7 * 45, seed: 13)),
                     ("classifier.0.bias", [7], randomArray(7, seed: 14)),
                     ("classifier.3.weight", [6, 7], randomArray(42, seed: 15)),
                     ("classifier.3.bias", [6], randomArray(6, seed: 16)),
                     ("classifier.6.weight", [4, 6], randomArray(24, seed: 17)),
                     ("classifier.6.bias", [4], randomArray(4, seed: 18))]
        let url = path("mine.safetensors")
        try WeightFile.save(t, to: url, format: .safetensors)
        let raw = try WeightFile.load(url)
        try checkTorchForward(raw, what: "test-written", inputShape: (2, h, w, c))
        // The permutation really moves rows: without it the answer would differ.
        let keras = try TorchVGG16.toKeras(raw)
        XCTAssertNotEqual(keras["fc1/kernel"]!.values, transposeForTest(raw["classifier.0.weight"]!.values, rows: 7, cols: 45))
        XCTAssertNil(keras.metadata["format"], "the 'pt' marker goes with the torch names")
    }

    func testTorchRoundTripsAndBatchNormNames() throws {
        // vgg16_bn-style features: conv, bn, relu, conv, bn, relu, pool, conv, bn, relu.
        var t = WeightSet()
        func conv(_ i: Int, _ o: Int, _ inC: Int) {
            t.tensors += [("features.\(i).weight", [o, inC, 3, 3], randomArray(o * inC * 9, seed: UInt64(i))),
                          ("features.\(i).bias", [o], randomArray(o, seed: UInt64(100 + i)))]
        }
        func bn(_ i: Int, _ ch: Int) {
            t.tensors += [("features.\(i).weight", [ch], randomArray(ch, seed: UInt64(200 + i))),
                          ("features.\(i).bias", [ch], randomArray(ch, seed: UInt64(300 + i))),
                          ("features.\(i).running_mean", [ch], randomArray(ch, seed: UInt64(400 + i))),
                          ("features.\(i).running_var", [ch], randomArray(ch, seed: UInt64(500 + i), range: 0.5...2)),
                          ("features.\(i).num_batches_tracked", [], [12])]
        }
        conv(0, 4, 3); bn(1, 4); conv(3, 4, 4); bn(4, 4); conv(7, 6, 4); bn(8, 6)
        t.tensors += [("classifier.0.weight", [5, 6 * 4], randomArray(120, seed: 9)), ("classifier.0.bias", [5], randomArray(5, seed: 10)),
                      ("classifier.3.weight", [5, 5], randomArray(25, seed: 11)), ("classifier.3.bias", [5], randomArray(5, seed: 12)),
                      ("classifier.6.weight", [2, 5], randomArray(10, seed: 13)), ("classifier.6.bias", [2], randomArray(2, seed: 14))]
        let keras = try TorchVGG16.toKeras(t)
        XCTAssertEqual(keras.names, ["block1_conv1/kernel", "block1_conv1/bias",
                                     "block1_bn1/gamma", "block1_bn1/beta", "block1_bn1/moving_mean", "block1_bn1/moving_variance",
                                     "block1_conv2/kernel", "block1_conv2/bias",
                                     "block1_bn2/gamma", "block1_bn2/beta", "block1_bn2/moving_mean", "block1_bn2/moving_variance",
                                     "block2_conv1/kernel", "block2_conv1/bias",
                                     "block2_bn1/gamma", "block2_bn1/beta", "block2_bn1/moving_mean", "block2_bn1/moving_variance",
                                     "fc1/kernel", "fc1/bias", "fc2/kernel", "fc2/bias", "predictions/kernel", "predictions/bias"])
        XCTAssertEqual(keras["block1_bn1/moving_variance"]!.values, t["features.1.running_var"]!.values)
        XCTAssertEqual(keras["block2_conv1/kernel"]!.shape, [3, 3, 4, 6])
        // OIHW -> HWIO element check.
        let oihw = t["features.7.weight"]!.values, hwio = keras["block2_conv1/kernel"]!.values
        for (o, i, y, x) in [(0, 0, 0, 0), (5, 3, 2, 1), (2, 1, 1, 2)] {
            XCTAssertEqual(hwio[((y * 3 + x) * 4 + i) * 6 + o], oihw[((o * 4 + i) * 3 + y) * 3 + x])
        }
        // Back to torch names: everything but num_batches_tracked, bit-identical.
        let back = try TorchVGG16.fromKeras(keras)
        let expected = t.tensors.filter { !$0.name.hasSuffix("num_batches_tracked") }
        XCTAssertEqual(Set(back.names), Set(expected.map(\.name)))
        for e in expected {
            XCTAssertEqual(back[e.name]?.shape, e.shape, e.name)
            XCTAssertEqual(back[e.name]?.values.map(\.bitPattern), e.values.map(\.bitPattern), e.name)
        }
        // Through files: torch safetensors -> Keras h5 -> torch safetensors.
        let st = path("bn.safetensors"), h5 = path("bn.h5"), st2 = path("bn2.safetensors")
        try WeightFile.save(t, to: st, format: .safetensors)
        try WeightFile.save(try TorchVGG16.toKeras(WeightFile.load(st)), to: h5, format: .h5)
        try WeightFile.save(try TorchVGG16.fromKeras(WeightFile.load(h5)), to: st2, format: .safetensors)
        let again = try WeightFile.load(st2)
        for e in expected { XCTAssertEqual(again[e.name]?.values.map(\.bitPattern), e.values.map(\.bitPattern), e.name) }
    }

    func testTimmNamesMapLikeTorchvision() throws {
        let fc1 = randomArray(6 * 4 * 2 * 2, seed: 1)
        let common: [(name: String, shape: [Int], values: [Float])] = [
            ("features.0.weight", [4, 3, 3, 3], randomArray(108, seed: 2)), ("features.0.bias", [4], randomArray(4, seed: 3))]
        let timm = WeightSet(tensors: common + [
            ("pre_logits.fc1.weight", [6, 4, 2, 2], fc1), ("pre_logits.fc1.bias", [6], randomArray(6, seed: 4)),
            ("pre_logits.fc2.weight", [5, 6, 1, 1], randomArray(30, seed: 5)), ("pre_logits.fc2.bias", [5], randomArray(5, seed: 6)),
            ("head.fc.weight", [3, 5], randomArray(15, seed: 7)), ("head.fc.bias", [3], randomArray(3, seed: 8))])
        let tv = WeightSet(tensors: common + [
            ("classifier.0.weight", [6, 16], fc1), ("classifier.0.bias", [6], randomArray(6, seed: 4)),
            ("classifier.3.weight", [5, 6], randomArray(30, seed: 5)), ("classifier.3.bias", [5], randomArray(5, seed: 6)),
            ("classifier.6.weight", [3, 5], randomArray(15, seed: 7)), ("classifier.6.bias", [3], randomArray(3, seed: 8))])
        XCTAssertTrue(TorchVGG16.looksLikeTorch(timm))
        let a = try TorchVGG16.toKeras(timm), b = try TorchVGG16.toKeras(tv)
        XCTAssertEqual(a.names, b.names)
        for (x, y) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.shape, y.shape, x.name)
            XCTAssertEqual(x.values, y.values, x.name)
        }
    }

    func testUnknownTorchNamesAreAClearError() throws {
        let w = WeightSet(tensors: [("features.0.weight", [4, 3, 3, 3], randomArray(108, seed: 1)),
                                    ("layer1.0.conv1.weight", [4, 4, 3, 3], randomArray(144, seed: 2))], source: "resnet.safetensors")
        let message = vggtlError { _ = try TorchVGG16.toKeras(w) }
        XCTAssertTrue(message.contains("layer1.0.conv1.weight") && message.contains("resnet.safetensors"), message)
        let keras = WeightSet(tensors: [("block1_conv1/kernel", [3, 3, 3, 4], randomArray(108, seed: 1)), ("dense_3/kernel", [2, 2], [1, 2, 3, 4])])
        XCTAssertTrue(vggtlError { _ = try TorchVGG16.fromKeras(keras) }.contains("dense_3/kernel"))
    }

    // MARK: - round trips

    func testRoundTripsAreBitIdentical() throws {
        let model = try tinyKerasModel(seed: 21)
        let original = weightSet(of: model.layers)
        // load -> save -> load in each format.
        for format in WeightFormat.allCases {
            let a = path("a.\(format.rawValue)"), b = path("b.\(format.rawValue)")
            try WeightFile.save(original, to: a, format: format)
            let loaded = try WeightFile.load(a)
            let m2 = try tinyKerasModel(seed: 22)
            try loadWeights(loaded, into: m2.layers)
            try WeightFile.save(weightSet(of: m2.layers), to: b, format: format)
            let again = try WeightFile.load(b)
            XCTAssertEqual(again.names, original.names, format.rawValue)
            XCTAssertEqual(again.tensors.map { $0.values.map(\.bitPattern) }, original.tensors.map { $0.values.map(\.bitPattern) }, format.rawValue)
        }
        // h5 -> safetensors -> h5, special values included.
        var special = original
        special.tensors[1].values[0] = -0.0
        special.tensors[1].values[1] = .nan
        special.tensors[1].values[2] = Float.leastNonzeroMagnitude
        special.metadata = ["classes": "cats,dogs"]
        let h5 = path("s.h5"), st = path("s.safetensors"), h5b = path("s2.h5")
        try WeightFile.save(special, to: h5, format: .h5)
        try WeightFile.save(WeightFile.load(h5), to: st, format: .safetensors)
        try WeightFile.save(WeightFile.load(st), to: h5b, format: .h5)
        let final = try WeightFile.load(h5b)
        XCTAssertEqual(final.names, special.names)
        XCTAssertEqual(final.tensors.map(\.shape), special.tensors.map(\.shape))
        XCTAssertEqual(final.tensors.map { $0.values.map(\.bitPattern) }, special.tensors.map { $0.values.map(\.bitPattern) })
        XCTAssertEqual(final.metadata["classes"], "cats,dogs")
        // Same bytes in, same bytes out for safetensors.
        let st2 = path("s2.safetensors")
        try WeightFile.save(WeightFile.load(st), to: st2, format: .safetensors)
        XCTAssertEqual(try Data(contentsOf: st), try Data(contentsOf: st2))
    }

    // MARK: - ImageNet weights

    func testMD5KnownVectors() throws {
        XCTAssertEqual(MD5.hex(Data()), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(MD5.hex(Data("abc".utf8)), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(MD5.hex(Data("The quick brown fox jumps over the lazy dog".utf8)), "9e107d9d372bb6826bd81d3542a419d6")
        let long = Data((0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var m = MD5()
        long.withUnsafeBytes { b in
            for s in stride(from: 0, to: b.count, by: 4097) { m.update(UnsafeRawBufferPointer(rebasing: b[s..<min(s + 4097, b.count)])) }
        }
        XCTAssertEqual(m.finalize(), MD5.hex(long), "streamed in odd pieces = all at once")
        let f = path("f.bin")
        try long.write(to: f)
        XCTAssertEqual(try MD5.hex(ofFile: f), MD5.hex(long))
    }

    func testImageNetWeightsCacheDownloadAndOfflineError() throws {
        let cache = dir.appendingPathComponent("keras/models")
        let name = ImageNetWeights.fileName(includeTop: false)
        XCTAssertEqual(name, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
        // (KERAS_HOME and HOME reach it through the CLI's knobs: KnobTests.)
        XCTAssertEqual(ImageNetWeights.cacheDirectory(kerasHome: URL(fileURLWithPath: "/data/k")).path, "/data/k/models")
        XCTAssertEqual(ImageNetWeights.cacheDirectory().path, NSHomeDirectory() + "/.keras/models")

        // Offline: the error says which file to put where, and the URL.
        let offline = vggtlError {
            _ = try ImageNetWeights.resolve(includeTop: false, cacheDirectory: cache, progress: false) { _, _, _ in
                throw OfflineForTest()
            }
        }
        XCTAssertTrue(offline.contains(cache.appendingPathComponent(name).path), offline)
        XCTAssertTrue(offline.contains("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/\(name)"), offline)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent(name).path))

        // URLSession against a closed local port (no outside network): the same kind of error.
        let refused = vggtlError {
            _ = try ImageNetWeights.resolve(includeTop: true, cacheDirectory: cache, baseURL: URL(string: "http://127.0.0.1:9/")!, progress: false)
        }
        XCTAssertTrue(refused.contains(ImageNetWeights.fileName(includeTop: true)) && refused.contains("127.0.0.1:9"), refused)

        // A download with the wrong hash is refused and leaves nothing behind.
        let body = Data("pretend these are weights".utf8)
        let bad = vggtlError {
            _ = try ImageNetWeights.resolve(includeTop: false, cacheDirectory: cache, progress: false) { _, receive, _ in
                try body.withUnsafeBytes { try receive($0) }
            }
        }
        XCTAssertTrue(bad.contains("MD5") && bad.contains(ImageNetWeights.md5(includeTop: false)), bad)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path), [])

        // A good download lands in the cache, in pieces, with progress reported.
        var requested: URL?
        var progressCalls = 0
        let got = try ImageNetWeights.resolve(includeTop: false, cacheDirectory: cache, expectedMD5: MD5.hex(body), progress: false) { url, receive, progress in
            requested = url
            try body.withUnsafeBytes { b in
                try receive(UnsafeRawBufferPointer(rebasing: b[0..<5])); progress(5, Int64(b.count))
                try receive(UnsafeRawBufferPointer(rebasing: b[5...])); progress(Int64(b.count), Int64(b.count))
            }
            progressCalls += 2
        }
        XCTAssertEqual(requested?.absoluteString, "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/\(name)")
        XCTAssertEqual(got.path, cache.appendingPathComponent(name).path)
        XCTAssertEqual(try Data(contentsOf: got), body)
        XCTAssertEqual(progressCalls, 2)
        // Now cached: no download.
        let cached = try ImageNetWeights.resolve(includeTop: false, cacheDirectory: cache, progress: false) { _, _, _ in
            XCTFail("downloaded although cached")
        }
        XCTAssertEqual(cached, got)
        XCTAssertTrue(vggtlError { _ = try ImageNetWeights.resolve(includeTop: false, cacheDirectory: cache, verifyCached: true, progress: false) }
            .contains("MD5"))
    }

    // MARK: - full size

    /// A full-size VGG16 notop file (14,714,688 random parameters) in the layout of Keras'
    /// download: Keras 1 names, input_1 and the pools in layer_names, fixed-length strings.
    /// Prints how long reading and loading take (no assertion on time).
    func testFullSizeVGG16NotopLoad() throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var rng = SeededGenerator(seed: 16)
        for layer in VGG16Layout.notop {
            for (name, shape) in layer.weights {
                let n = shape.reduce(1, *)
                tensors.append((name, shape, (0..<n).map { _ in Float(Int32(truncatingIfNeeded: rng.next())) * 1e-10 }))
            }
        }
        let set = WeightSet(tensors: tensors)
        XCTAssertEqual(set.parameterCount, 14_714_688)
        XCTAssertEqual(VGG16Layout.parameterCount(includeTop: false), 14_714_688)
        XCTAssertEqual(VGG16Layout.parameterCount(includeTop: true), 138_357_544)
        var layerNames = ["input_1"]
        for (b, n) in VGG16Layout.blocks.enumerated() {
            layerNames += (1...n).map { "block\(b + 1)_conv\($0)" } + ["block\(b + 1)_pool"]
        }
        let url = path(ImageNetWeights.fileName(includeTop: false))
        try KerasH5.write(set, to: url, options: .init(legacyNaming: true, layerNames: layerNames))

        var layers: [Layer] = []
        var inChannels = 3
        var initRNG = SeededGenerator(seed: 1)
        for layer in VGG16Layout.notop {
            let filters = layer.weights[1].1[0]
            layers.append(try Conv2D(layer.layer, inChannels: inChannels, filters: filters, on: cpuDevice, rng: &initRNG))
            inChannels = filters
        }

        let t0 = Date()
        let loaded = try WeightFile.load(url)
        let t1 = Date()
        let r = try loadWeights(loaded, into: layers)
        let t2 = Date()
        print(String(format: "VGG16 notop (14,714,688 parameters, %.1f MB): read %.3f s, into the model %.3f s, total %.3f s",
                     Double((try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0) / 1e6,
                     t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t2.timeIntervalSince(t0)))
        XCTAssertEqual(r.loaded.count, 26)
        XCTAssertEqual(loaded.names, set.names)
        let last = layers.last as! Conv2D
        XCTAssertEqual(last.kernel.value.toArray(), set["block5_conv3/kernel"]!.values)
        let summary = try WeightFile.describe(url)
        XCTAssertEqual(summary.entries.first?.storedName, "block1_conv1_W_1:0")
    }

    // MARK: - helpers

    /// Conv (3x3 same, ReLU) 2 -> 3 channels, 2x2 max pool, flatten, dense 12 -> 2, on a 4x4x2 input.
    private func tinyKerasModel(seed: UInt64) throws -> Graph {
        var rng = SeededGenerator(seed: seed)
        return Graph([try Conv2D("block1_conv1", inChannels: 2, filters: 3, on: cpuDevice, rng: &rng),
                           Pool2D("block1_pool", .max), Flatten("flatten"),
                           try Dense("fc1", inputs: 12, units: 2, on: cpuDevice, rng: &rng)])
    }

    private func tinyWeights(seed: UInt64) -> WeightSet {
        WeightSet(tensors: [("block1_conv1/kernel", [3, 3, 2, 3], randomArray(54, seed: seed)),
                            ("block1_conv1/bias", [3], randomArray(3, seed: seed + 1)),
                            ("fc1/kernel", [12, 2], randomArray(24, seed: seed + 2)),
                            ("fc1/bias", [2], randomArray(2, seed: seed + 3))])
    }

    /// The tiny Keras model computed in Double, NHWC, from the set's raw values.
    private func referenceKerasTiny(x: [Float], h: Int, w: Int, c: Int, set: WeightSet, batch: Int = 1) -> [Float] {
        let k = set["block1_conv1/kernel"]!, b = set["block1_conv1/bias"]!.values
        let f = k.shape[3]
        var out: [Float] = []
        for n in 0..<batch {
            let img = Array(x[(n * h * w * c)..<((n + 1) * h * w * c)]).map(Double.init)
            var y = [Double](repeating: 0, count: h * w * f)
            for i in 0..<h { for j in 0..<w { for o in 0..<f {
                var s = Double(b[o])
                for di in 0..<3 { for dj in 0..<3 {
                    let ii = i + di - 1, jj = j + dj - 1
                    guard ii >= 0, ii < h, jj >= 0, jj < w else { continue }
                    for ci in 0..<c { s += img[(ii * w + jj) * c + ci] * Double(k.values[((di * 3 + dj) * c + ci) * f + o]) }
                } }
                y[(i * w + j) * f + o] = max(0, s)
            } } }
            let ph = h / 2, pw = w / 2
            var flat = [Double](repeating: 0, count: ph * pw * f)
            for i in 0..<ph { for j in 0..<pw { for o in 0..<f {
                flat[(i * pw + j) * f + o] = [y[((2 * i) * w + 2 * j) * f + o], y[((2 * i) * w + 2 * j + 1) * f + o],
                                              y[((2 * i + 1) * w + 2 * j) * f + o], y[((2 * i + 1) * w + 2 * j + 1) * f + o]].max()!
            } } }
            out += denseReference(flat, set["fc1/kernel"]!, set["fc1/bias"]!.values, relu: false).map { Float($0) }
        }
        return out
    }

    /// y = x K + b with K stored (in, out).
    private func denseReference(_ x: [Double], _ k: (shape: [Int], values: [Float]), _ b: [Float], relu: Bool) -> [Double] {
        let (inputs, units) = (k.shape[0], k.shape[1])
        return (0..<units).map { o in
            var s = Double(b[o])
            for i in 0..<inputs { s += x[i] * Double(k.values[i * units + o]) }
            return relu ? max(0, s) : s
        }
    }

    /// Loads a torch-named set (conv, pool, classifier.0/3/6) into our NHWC model and compares with
    /// torch's computation done here in NCHW: conv with OIHW weights, ReLU, 2x2 max pool, flatten
    /// as c*H*W + h*W + w, linear layers with (out, in) weights.
    private func checkTorchForward(_ raw: WeightSet, what: String, inputShape: (Int, Int, Int, Int) = (1, 4, 4, 2)) throws {
        let (batch, h, w, c) = inputShape
        let cw = raw["features.0.weight"]!, cb = raw["features.0.bias"]!.values
        let f = cw.shape[0]
        let l0 = raw["classifier.0.weight"]!, l1 = raw["classifier.3.weight"]!, l2 = raw["classifier.6.weight"]!
        var rng = SeededGenerator(seed: 3)
        let flat = (h / 2) * (w / 2) * f
        let model = Graph([try Conv2D("block1_conv1", inChannels: c, filters: f, on: cpuDevice, rng: &rng),
                                Pool2D("block1_pool", .max), Flatten("flatten"),
                                try Dense("fc1", inputs: flat, units: l0.shape[0], activation: .relu, on: cpuDevice, rng: &rng),
                                try Dense("fc2", inputs: l0.shape[0], units: l1.shape[0], activation: .relu, on: cpuDevice, rng: &rng),
                                try Dense("predictions", inputs: l1.shape[0], units: l2.shape[0], on: cpuDevice, rng: &rng)])
        let r = try loadWeights(raw, into: model.layers)
        XCTAssertEqual(r.loaded.count, 8, what)
        let x = randomArray(batch * h * w * c, seed: 31)
        let y = try model.forward(Tensor(x, shape: [batch, h, w, c], on: cpuDevice), .inference).toArray()

        var reference: [Float] = []
        for n in 0..<batch {
            // NHWC input -> NCHW, as torch would hold the same image.
            var img = [Double](repeating: 0, count: c * h * w)
            for i in 0..<h { for j in 0..<w { for ch in 0..<c { img[(ch * h + i) * w + j] = Double(x[((n * h + i) * w + j) * c + ch]) } } }
            var conv = [Double](repeating: 0, count: f * h * w)
            for o in 0..<f { for i in 0..<h { for j in 0..<w {
                var s = Double(cb[o])
                for ch in 0..<c { for di in 0..<3 { for dj in 0..<3 {
                    let ii = i + di - 1, jj = j + dj - 1
                    guard ii >= 0, ii < h, jj >= 0, jj < w else { continue }
                    s += img[(ch * h + ii) * w + jj] * Double(cw.values[((o * c + ch) * 3 + di) * 3 + dj])
                } } }
                conv[(o * h + i) * w + j] = max(0, s)
            } } }
            let ph = h / 2, pw = w / 2
            var pooled = [Double](repeating: 0, count: f * ph * pw)   // NCHW flatten: c*H*W + h*W + w
            for o in 0..<f { for i in 0..<ph { for j in 0..<pw {
                pooled[(o * ph + i) * pw + j] = [conv[(o * h + 2 * i) * w + 2 * j], conv[(o * h + 2 * i) * w + 2 * j + 1],
                                                 conv[(o * h + 2 * i + 1) * w + 2 * j], conv[(o * h + 2 * i + 1) * w + 2 * j + 1]].max()!
            } } }
            func linear(_ v: [Double], _ wt: (shape: [Int], values: [Float]), _ bias: [Float], relu: Bool) -> [Double] {
                (0..<wt.shape[0]).map { o in
                    var s = Double(bias[o])
                    for i in 0..<wt.shape[1] { s += Double(wt.values[o * wt.shape[1] + i]) * v[i] }
                    return relu ? max(0, s) : s
                }
            }
            let a = linear(pooled, l0, raw["classifier.0.bias"]!.values, relu: true)
            let b = linear(a, l1, raw["classifier.3.bias"]!.values, relu: true)
            reference += linear(b, l2, raw["classifier.6.bias"]!.values, relu: false).map { Float($0) }
        }
        assertClose(y, reference, tol: 1e-4, "\(what) torch forward")
    }

    private func transposeForTest(_ v: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: v.count)
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
        return out
    }


    private func handMadeNPY(descr: String, shape: String, data: [UInt8], version: UInt8, fortran: Bool = false, trailingComma: Bool = true) -> Data {
        handMadeNPY(rawHeader: "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape)\(trailingComma ? ", " : "")}",
                    data: data, version: version)
    }

    private func handMadeNPY(rawHeader: String, data: [UInt8], version: UInt8) -> Data {
        var header = Array(rawHeader.utf8)
        let prefix = version == 1 ? 10 : 12
        while (prefix + header.count + 1) % 16 != 0 { header.append(0x20) }   // old NumPy aligned to 16
        header.append(0x0a)
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let n = header.count
        out += version == 1 ? [UInt8(n & 0xff), UInt8(n >> 8)] : [UInt8(n & 0xff), UInt8((n >> 8) & 0xff), UInt8((n >> 16) & 0xff), UInt8(n >> 24)]
        return Data(out + header + data)
    }

    private func safetensorsFile(header: String, data: [UInt8]) -> Data {
        let h = Array(header.utf8)
        return Data(withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data)
    }

    /// Decodes a PythonFixtures blob: base64, then 0x00 n -> n+1 zero bytes.
    private func fixture(_ base64: String) -> Data {
        let packed = [UInt8](Data(base64Encoded: base64.filter { !$0.isWhitespace })!)
        var out: [UInt8] = []
        var i = 0
        while i < packed.count {
            if packed[i] == 0 { out += [UInt8](repeating: 0, count: Int(packed[i + 1]) + 1); i += 2 } else { out.append(packed[i]); i += 1 }
        }
        return Data(out)
    }

    /// ((i*37 + seed*11) % 101 - 50) / 64: the values the Python fixtures hold (exact in float16 too).
    private func fixtureValues(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 * 37 + seed * 11) % 101) - 50) / 64 }
    }
}

private struct OfflineForTest: Error, CustomStringConvertible {
    var description: String { "The Internet connection appears to be offline." }
}

/// Files written by h5py 3.16 / NumPy 2.4 / safetensors / Keras 3.15 (Python), zero runs packed (0x00 n = n+1 zeros), base64.
/// Values: ((i*37 + seed*11) % 101 - 50) / 64 for element i (C order), the seed noted per tensor.
enum PythonFixtures {
    /// Keras 1 layout (block1_conv1/block1_conv1_W_1:0), fixed-length string attributes.
    static let kerasLegacyH5 = """
    iUhERg0KGgoABAgIAAAEAAAQAAz//////////wQdAAX//////////wAHYAAGAQAGiAAGqAIABQEAAAMAAAEAAhgABhAAABAABCADAAWYAAZUUk
    VFAAEBAAD/////////////////////AAd4BgAFCAD/APZIRUFQAANYAAZAAAbIAgANaW5wdXRfMQAAYmxvY2sxX2NvbnYxAANibG9jazFfcG9v
    bAAEZmxhdHRlbgAAZmMxAAQBAAYYAA4RAAAQAASIAAaoAgAFDAAAeAAEAQAADAAACAAAGAAAbGF5ZXJfbmFtZXMABBMBAAEMAAIBAQEABAUABg
    UABmlucHV0XzEABGJsb2NrMV9jb252MWJsb2NrMV9wb29sAABmbGF0dGVuAARmYzEADAEAAAMAAAEAAhgABhAAABAABMAHAAVoAAZUUkVFAAP/
    ////////////////////AP8A/wAHSEVBUAADWAAGCAAGIAYADQEABlAARlNOT0QBAAAFAAAQAAYoCAAFAQAGUAgABXAKAAUgAAa0DwAFAQAG3A
    8ABfwRAAU4AAYEFgAFAQAGLBYABUwYAAUwAAbcEgAFAQAGBBMABSQVAAUIAAa4AwAFAQAG4AMABgYAfREAABAABOADAAYGAAUMAABIAAQBAAAN
    AAAUAAAYAAB3ZWlnaHRfbmFtZXMAAxEgPwAACAAEQAAANAsAADT/AwAFAQEBABQBAAADAAABAAIYAAYQAAAQAAToCgAFgAAGVFJFRQABAQAA//
    ///////////////////wAHUA0ABSAA/wD2SEVBUAADWAAGOAAGkAoADWJsb2NrMV9jb252MV9XXzE6MAAFYmxvY2sxX2NvbnYxX2JfMTowAAUB
    AAYgABYRAAAQAARQCAAFcAoABQwAAGAABAEAAA0AAAgAABgAAHdlaWdodF9uYW1lcwADEwEAARIAAgEBAQAEAgAGAgAGYmxvY2sxX2NvbnYxX1
    dfMTowYmxvY2sxX2NvbnYxX2JfMTowAAMBAAAFAAABAAMBAAUBAABIAAQBBAEABAMABgMABgIABgMABgMABgMABgIABgMABgMAABgAAAEAAhEg
    HwAABAAEIAAAFwgAABd/AAYFAAAIAAABAAICAgIBAAMIAAAYAAQDAXgMAAXYAA5YAF4cvwACvQABDD8AAei+AAI+AAE0PwABmL4AAZA+AAE4vw
    ABEL4AAeA+AAEQvwABgDwAARg/AAHQvgABMD4AAUA/AAGAvgABqD4AASy/AAHAvQAB+D4AAQS/AAGAPQABJD8AAbi+AAFgPgABSL8AAVC+AAHA
    PgABIL8AAUC9AAEIPwAB8L4AAeA9AAEwPwABoL4AAYg+AAE8vwABIL4AAdg+AAEUvwAFFD8AAdi+AAEgPgABPD8AAYi+AAGgPgABML8AAeC9AA
    HwPgABCL8AAUA9U05PRAEAAAIAAAgABmgLAB0gAAaYDgD/AA0BAAAFAAABAAMBAAUBAAAYAAQBAQEABAMABgMABgMAABgAAAEAAhEgHwAABAAE
    IAAAFwgAABd/AAYFAAAIAAABAAICAgIBAAMIAAAYAAQDAagPAAUMAA6IAI7gvgABED4AATg/AQAAAwAAAQACGAAGEAAAEAAEdBIABWgABlRSRU
    UAA/////////////////////8A/wD/AAdIRUFQAANYAAYIAAYcEgANAQAGUABGEQAAEAAE3A8ABfwRAAUMAABIAAQBAAANAAAUAAAYAAB3ZWln
    aHRfbmFtZXMAAxEgPwAACAAEQAAANAsAADT/AwAFAQEBABQBAAADAAABAAIYAAYQAAAQAAScFQAFaAAGVFJFRQAD/////////////////////w
    D/AP8AB0hFQVAAA1gABggABkQVAA0BAAZQAEYRAAAQAAQEEwAFJBUABQwAAEgABAEAAA0AABQAABgAAHdlaWdodF9uYW1lcwADESA/AAAIAARA
    AAA0CwAANP8DAAUBAQEAFAEAAAMAAAEAAhgABhAAABAABMQYAAVwAAZUUkVFAAEBAAD/////////////////////AAekGgAFGAD/APZIRUFQAA
    NYAAYoAAZsGAANZmMxX1dfMTowAAZmYzFfYl8xOjAABgEABjAAJhEAABAABCwWAAVMGAAFDAAAUAAEAQAADQAACAAAGAAAd2VpZ2h0X25hbWVz
    AAMTAQABCQACAQEBAAQCAAYCAAZmYzFfV18xOjBmYzFfYl8xOjAABQEAAAUAAAEAAwEABQEAACgABAECAQAEDAAGAgAGDAAGAgAGAwAAGAAAAQ
    ACESAfAAAEAAQgAAAXCAAAF38ABgUAAAgAAAEAAgICAgEAAwgAABgABAMBRBoABWAADngAfoi+AAGgPgABML8AAeC9AAHwPgABCL8AAUA9AAEg
    PwABwL4AAVA+AAFIPwABYL4AAbg+AAEkvwABgL0AAQQ/AAH4vgABwD0AASw/AAGovgABgD4AAUC/AAEwvgAB0D5TTk9EAQAAAgAACAAGNBkAHR
    gABuwbAP8ADQEAAAUAAAEAAwEABQEAABgABAEBAQAEAgAGAgAGAwAAGAAAAQACESAfAAAEAAQgAAAXCAAAF38ABgUAAAgAAAEAAgICAgEAAwgA
    ABgABAMB/BwABQgADogAjsC9AAH4Pg==
    """
    /// Keras 2 layout (block1_conv1/block1_conv1/kernel:0), variable-length string attributes;
    /// block1_conv1/bias stored as float64 and fc1/kernel as float16.
    static let keras2H5 = """
    iUhERg0KGgoABAgIAAAEAAAQAAz//////////6gyAAX//////////wAHYAAGAQAGiAAGqAIABQEAAAYAAAEAAhgABhAAABAABCADAAWoAAZUUk
    VFAAEBAAD/////////////////////AAc4FwAFKAD/APZIRUFQAANYAAY4AAbIAgANYmxvY2sxX2NvbnYxAANibG9jazFfcG9vbAAEZmxhdHRl
    bgAAZmMxAAQBAAYgABYQAAAQAATIEwAFsAAGDAAAiAAEAQAADAAAFAAAGAAAbGF5ZXJfbmFtZXMABBkBAQAAEAACEAACAQAECAAEAQEBAAQEAA
    YEAAYMAALIAwAFBAACCwACyAMABQMAAgcAAsgDAAUBAAIDAALIAwAFAgACR0NPTAEAAxAABQEABgcABmZsYXR0ZW4AAAIABgMABmZjMQAEAwAG
    CwAGYmxvY2sxX3Bvb2wABAQABgwABmJsb2NrMV9jb252MQADBQAGCgAGdGVuc29yZmxvdwAFBgAGBgAGMi4xMy4xAAEHAAYTAAZibG9jazFfY2
    9udjEvYmlhczowAAQIAAYVAAZibG9jazFfY29udjEva2VybmVsOjAAAgkABgoABmZjMS9iaWFzOjAABQoABgwABmZjMS9rZXJuZWw6MAALuA4A
    /wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AK0RAAAQAASIAAaoAgAFDAAAQAAEAQAACAAAFAAACAAAYmFja2VuZAAAGQEBAAAQAAIQAAIBAA
    QIAAQBAAYKAALIAwAFBQACDAAASAAEAQAADgAAFAAACAAAa2VyYXNfdmVyc2lvbgACGQEBAAAQAAIQAAIBAAQIAAQBAAYGAALIAwAFBgACAQAA
    AwAAAQACGAAGEAAAEAAEgBgABYgABlRSRUUAAQEAAP////////////////////8AB7AdAAUIAP8A9khFQVAAA1gABhgABuAWAA1ibG9jazFfY2
    9udjEAAwEABkAANlNOT0QBAAAEAAAIAAZ4FAAFAQAGoBQABcAWAAUYAAZoIQAFAQAGkCEABbAjAAUwAAa4JwAFAQAG4CcABioABSgABpAkAAUB
    AAa4JAAF2CYApREAABAABKAUAAXAFgAFDAAAaAAEAQAADQAAFAAAGAAAd2VpZ2h0X25hbWVzAAMZAQEAABAAAhAAAgEABAgABAEBAQAEAgAGAg
    AGFQACyAMABQgAAhMAAsgDAAUHAAIBAAAFAAABAAMBAAUBAABIAAQBBAEABAMABgMABgIABgMABgMABgMABgIABgMABgMAABgAAAEAAhEgHwAA
    BAAEIAAAFwgAABd/AAYFAAAIAAABAAICAgIBAAMIAAAYAAQDARgaAAXYAA5YAF4cvwACvQABDD8AAei+AAI+AAE0PwABmL4AAZA+AAE4vwABEL
    4AAeA+AAEQvwABgDwAARg/AAHQvgABMD4AAUA/AAGAvgABqD4AASy/AAHAvQAB+D4AAQS/AAGAPQABJD8AAbi+AAFgPgABSL8AAVC+AAHAPgAB
    IL8AAUC9AAEIPwAB8L4AAeA9AAEwPwABoL4AAYg+AAE8vwABIL4AAdg+AAEUvwAFFD8AAdi+AAEgPgABPD8AAYi+AAGgPgABML8AAeC9AAHwPg
    ABCL8AAUA9AQAAAQAAAQACGAAGEQAAEAAEGBsABTgdAAVUUkVFAAEBAAD/////////////////////AAf4HgAFCAD/APZIRUFQAANYAAYgAAZY
    HQANa2VybmVsOjAAB2JpYXM6MAABAQAGOAAuU05PRAEAAAEAAAgABvAaAAUBAAYYGwAFOB0A/wAdU05PRAEAAAIAABgABkAgAB0IAAYIGQD/AA
    0BAAAFAAABAAMBAAUBAAAYAAQBAQEABAMABgMABgMAABgAAAEAAhEgPwAACAAEQAAANAsAADT/AwAFBQAACAAAAQACAgICAQADCAAAGAAEAwFQ
    IQAFGAAOiACS3L8ABcI/AAXnPwEAAAMAAAEAAhgABhAAABAABCgkAAVoAAZUUkVFAAP/////////////////////AP8A/wAHSEVBUAADWAAGCA
    AG0CMADQEABlAARhEAABAABJAhAAWwIwAFDAAASAAEAQAADQAAFAAAGAAAd2VpZ2h0X25hbWVzAAMRID8AAAgABEAAADQLAAA0/wMABQEBAQAU
    AQAAAwAAAQACGAAGEAAAEAAEUCcABWgABlRSRUUAA/////////////////////8A/wD/AAdIRUFQAANYAAYIAAb4JgANAQAGUABGEQAAEAAEuC
    QABdgmAAUMAABIAAQBAAANAAAUAAAYAAB3ZWlnaHRfbmFtZXMAAxEgPwAACAAEQAAANAsAADT/AwAFAQEBABQBAAADAAABAAIYAAYQAAAQAAR4
    KgAFiAAGVFJFRQABAQAA/////////////////////wAILwAFCAD/APZIRUFQAANYAAYQAAYgKgANZmMxAAQBAAZIAD4RAAAQAATgJwAGKgAFDA
    AAaAAEAQAADQAAFAAAGAAAd2VpZ2h0X25hbWVzAAMZAQEAABAAAhAAAgEABAgABAEBAQAEAgAGAgAGDAACyAMABQoAAgoAAsgDAAUJAAIBAAAF
    AAABAAMBAAUBAAAoAAQBAgEABAwABgIABgwABgIABgMAABgAAAEAAhEgDwAAAgAEEAAACgUAAAoPAAYFAAAIAAABAAICAgIBAAMIAAAYAAQDAR
    AsAAUwAA54AHxAtAAANYC5AACvgDdAuAAAKgAAOQAAtoAyQDoAALPANSC5AACsIDjAtwAALmA5QLUAADQAALqAsYA2AQAAAQAAAQACGAAGEQAA
    EAAEaCwABYguAAVUUkVFAAEBAAD/////////////////////AAdIMAAFCAD/APZIRUFQAANYAAYgAAaoLgANa2VybmVsOjAAB2JpYXM6MAABAQ
    AGOAAuU05PRAEAAAEAAAgABkAsAAUBAAZoLAAFiC4A/wAdU05PRAEAAAIAABgABpAxAB0IAAcrAP8ADQEAAAUAAAEAAwEABQEAABgABAEBAQAE
    AgAGAgAGAwAAGAAAAQACESAfAAAEAAQgAAAXCAAAF38ABgUAAAgAAAEAAgICAgEAAwgAABgABAMBoDIABQgADogAjsC9AAH4Pg==
    """
    /// torchvision naming: features.0 (3,2,3,3) seeds 5/6; classifier.0 (4,12) 7/8, .3 (3,4) 9/10, .6 (2,3) 11/12.
    static let torchSafetensors = """
    eAIABXsiX19tZXRhZGF0YV9fIjp7ImZvcm1hdCI6InB0In0sImNsYXNzaWZpZXIuMC5iaWFzIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOls0XS
    wiZGF0YV9vZmZzZXRzIjpbMCwxNl19LCJjbGFzc2lmaWVyLjAud2VpZ2h0Ijp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOls0LDEyXSwiZGF0YV9v
    ZmZzZXRzIjpbMTYsMjA4XX0sImNsYXNzaWZpZXIuMy5iaWFzIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlszXSwiZGF0YV9vZmZzZXRzIjpbMj
    A4LDIyMF19LCJjbGFzc2lmaWVyLjMud2VpZ2h0Ijp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlszLDRdLCJkYXRhX29mZnNldHMiOlsyMjAsMjY4
    XX0sImNsYXNzaWZpZXIuNi5iaWFzIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlsyXSwiZGF0YV9vZmZzZXRzIjpbMjY4LDI3Nl19LCJjbGFzc2
    lmaWVyLjYud2VpZ2h0Ijp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlsyLDNdLCJkYXRhX29mZnNldHMiOlsyNzYsMzAwXX0sImZlYXR1cmVzLjAu
    YmlhcyI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbM10sImRhdGFfb2Zmc2V0cyI6WzMwMCwzMTJdfSwiZmVhdHVyZXMuMC53ZWlnaHQiOnsiZH
    R5cGUiOiJGMzIiLCJzaGFwZSI6WzMsMiwzLDNdLCJkYXRhX29mZnNldHMiOlszMTIsNTI4XX19ICAgAAEYPwAB0L4AATA+AAFAPwAB2D4AARS/
    AAUUPwAB2L4AASA+AAE8PwABiL4AAaA+AAEwvwAB4L0AAfA+AAEIvwABQD0AASA/AAHAvgABUD4AAUg/AAFgvgABuD4AASS/AAGAvQABBD8AAf
    i+AAHAPQABLD8AAai+AAGAPgABQL8AATC+AAHQPgABGL8AAYC8AAEQPwAB4L4AARA+AAE4PwABkL4AAZg+AAE0vwACvgAB6D4AAQy/AAI9AAEc
    PwAByL4AAUA+AAFEPwABJL8AAYC9AAEEPwABRD8AAXC+AAGwPgABKL8AAaC9AAI/AAK/AAGgPQABKD8AAbC+AAFwPgABRL8AAZi+AAGQPgAB8L
    4AAeA9AAEwPwABoL4AAYg+AAE8vwABgD4AAUC/AAEwvgABoD0AASg/AAGwvgABcD4AAUS/AAFAvgAByD4AARy/AAK9AAEMPwAB6L4AAj4AATQ/
    AAGYvgABkD4AATi/AAEQvgAB4D4AARC/AAGAPAABGD8AAdC+AAEwPgABQD8AAYC+AAGoPgABLL8AAcC9AAH4PgABBL8AAYA9AAEkPwABuL4AAW
    A+AAFIvwABUL4AAcA+AAEgvwABQL0AAQg/AAHwvgAB4D0AATA/AAGgvgABiD4AATy/AAEgvgAB2D4AARS/AAUUPwAB2L4AASA+AAE8Pw==
    """
    /// a16: float16 (2,3) seed 13; a64: float64 (5,) seed 14; i64: int64 arange(-3, 3) as (2,3).
    static let dtypesSafetensors = """
    sAAGeyJpNjQiOnsiZHR5cGUiOiJJNjQiLCJzaGFwZSI6WzIsM10sImRhdGFfb2Zmc2V0cyI6WzAsNDhdfSwiYTY0Ijp7ImR0eXBlIjoiRjY0Ii
    wic2hhcGUiOls1XSwiZGF0YV9vZmZzZXRzIjpbNDgsODhdfSwiYTE2Ijp7ImR0eXBlIjoiRjE2Iiwic2hhcGUiOlsyLDNdLCJkYXRhX29mZnNl
    dHMiOls4OCwxMDBdfX39//////////7///////////////////8ABwEABgIADKg/AAXkPwAF2L8ABco/AAXpPwAAsEA3YLgAACjgOEC2
    """
    /// np.save of a float64 (2,3,4) array, seed 15.
    static let float64NPY = """
    k05VTVBZAQAAdgAAeydkZXNjcic6ICc8ZjgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMywgNCksIH0gICAgICAgIC
    AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgAFzD8ABem/AAXKvwAF2D8ABeS/AAWovwAF4T8ABd6/AAW8
    PwAF5j8ABdS/AAXRPwAEgOe/AAXEvwAF2z8ABIDivwAMgOI/AAXbvwAFxD8ABIDnPwAF0b8ABdQ/AAXmvw==
    """
    /// np.save of int64 labels [3, 0, 1, 2, 7].
    static let labelsNPY = """
    k05VTVBZAQAAdgAAeydkZXNjcic6ICc8aTgnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoNSwpLCB9ICAgICAgICAgICAgIC
    AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgMADgEABgIABgcABg==
    """
    /// Keras 3.15 model.save_weights("x.weights.h5") of Sequential([Input((3,)), Dense(2, name="fc1")]).
    static let keras3WeightsH5 = """
    iUhERg0KGgoABAgIAAAEAAAQAAz//////////yAuAAX//////////wAHYAAGAQAGiAAGqAIABQEAAAEAAAEAAhgABhEAABAABIgABqgCAAVUUk
    VFAAEBAAD/////////////////////AAfgBQAFCAD/APZIRUFQAANYAAYYAAbIAgANdmFycwADbGF5ZXJzAAEBAAZAADYBAAADAAABAAIYAAYQ
    AAAQAAQoBwAFYAAGVFJFRQAD/////////////////////wD/AP8AB0hFQVAAA1gABggABogFAA0BAAZQAEZTTk9EAQAAAgAAEAAGiAcABQEABx
    gABSAaAAUIAAYgAwAFAQAGSAMABWgFAPURAAAQAARIAwAFaAUABQwAAEAABAEAAAUAABQAAAgAAG5hbWUAAxkBAQAAEAACEAACAQAECAAEAQAG
    CgADCAAFAQACAQAAAQAAAQACGAAGEQAAEAAFGAAFIBoABQEAAAEAAAEAAhgABhEAABAABJgaAAW4HAAFAQAAAwAAAQACGAAGEAAAEAAEWCIABW
    AABkdDT0wBAAMQAAUBAAYKAAZzZXF1ZW50aWFsAAUCAAYDAAZmYzEADLgPAP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AK1UUkVFAAEB
    AAD/////////////////////AAcwHQAFCAD/APZIRUFQAANYAAYQAAZAGgANZGVuc2UAAgEABkgAPlRSRUUAAQEAAP////////////////////
    8ABxAhAAUIAP8A9khFQVAAA1gABhAABtgcAA12YXJzAAMBAAZIAD5TTk9EAQAAAQAACAAGsAcABQEABpgaAAW4HAD/AB1UUkVFAAEBAAD/////
    ////////////////AAfIKwAFEAD/APZIRUFQAANYAAYYAAa4IAANMAAGMQAGAQAGQAA2U05PRAEAAAEAAAgABtgHAAUBAAZ4HgAFmCAA/wAdEQ
    AAEAAEeB4ABZggAAUMAABAAAQBAAAFAAAUAAAIAABuYW1lAAMZAQEAABAAAhAAAgEABAgABAEABgMAAwgABQIAAgEAAAUAAAEAAwEABQEAACgA
    BAECAQAEAwAGAgAGAwAGAgAGAwAAGAAAAQACESAfAAAEAAQgAAAXCAAAF38ABgUAAAgAAAEAAgICAgEAAwgAABgABAMByCMABRgADngAfBzasz
    08cbE9J2pOP8ACdj9UwRG/R7gZvwD/AP8A/wD/AP8A/wD/AOdTTk9EAQAAAgAACAAGuCIAHRAABhAtAP8ADQEAAAUAAAEAAwEABQEAABgABAEB
    AQAEAgAGAgAGAwAAGAAAAQACESAfAAAEAAQgAAAXCAAAF38ABgUAAAgAAAEAAgICAgEAAwgAABgABAMB4CMABQgADogAjA==
    """
}

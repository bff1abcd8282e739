import Foundation
import VGGTL
import XCTest

/// Image codec, resize, preprocessing, augmentation, sources and the batch loader.
/// Expected pixel values marked "Pillow" were produced with Pillow 13.0 (PIL.Image.open(...)
/// .convert("RGB"), Image.resize(BILINEAR)) and pasted below; the tests need no Python.
final class DataTests: VGGTLTestCase {
    var temp: URL!

    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let temp { try? FileManager.default.removeItem(at: temp) }
    }

    // MARK: - Helpers

    func noise(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var g = SeededGenerator(seed: seed)
        return RGBImage(width: width, height: height, pixels: (0..<width * height * 3).map { _ in UInt8(truncatingIfNeeded: g.next()) })
    }

    /// Smooth content, which JPEG keeps close.
    func gradient(width: Int, height: Int) -> RGBImage {
        var p: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                p += [UInt8(x * 255 / max(width - 1, 1)), UInt8(y * 255 / max(height - 1, 1)), UInt8((x + y) * 127 / max(width + height - 2, 1))]
            }
        }
        return RGBImage(width: width, height: height, pixels: p)
    }

    func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = temp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
        return url
    }

    func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    /// The error's message, asserting that it is a VGGTLError.
    func message(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch let error as VGGTLError {
            return error.description
        } catch {
            XCTFail("expected a VGGTLError, got \(error)", file: file, line: line)
            return ""
        }
    }

    // MARK: - Codec

    func testPNGRoundTripIsExact() throws {
        let image = noise(width: 13, height: 7, seed: 1)
        let url = temp.appendingPathComponent("noise.png")
        try ImageCodec.writePNG(image, to: url)
        XCTAssertEqual(try ImageCodec.decode(contentsOf: url), image)
    }

    func testJPEGRoundTripIsClose() throws {
        let image = gradient(width: 40, height: 24)
        let url = temp.appendingPathComponent("gradient.jpg")
        try ImageCodec.writeJPEG(image, to: url, quality: 95)
        let back = try ImageCodec.decode(contentsOf: url)
        XCTAssertEqual(back.width, 40)
        XCTAssertEqual(back.height, 24)
        XCTAssertLessThanOrEqual(maxDifference(back.pixels, image.pixels), 12)
        let mean = Double(zip(back.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(image.pixels.count)
        XCTAssertLessThan(mean, 2.5)
    }

    func testJPEGDecodeEqualsPillow() throws {
        // 16x8, 4:2:0 chroma: exercises ISLOW IDCT and fancy upsampling.
        let image = try ImageCodec.decode(data: Fixtures.pillowJPEG, name: "pillow.jpg")
        XCTAssertEqual(image.width, 16)
        XCTAssertEqual(image.height, 8)
        XCTAssertEqual(image.pixels, Fixtures.pillowJPEGDecoded)
    }

    func testGrayscaleJPEGBecomesRGB() throws {
        let image = gradient(width: 24, height: 16)
        let bytes = try ImageCodec.encodeJPEG(image, quality: 95, grayscale: true)
        let url = try file("gray.jpg", bytes)
        let back = try ImageCodec.decode(contentsOf: url)
        XCTAssertEqual(back.pixels.count, 24 * 16 * 3)
        for i in 0..<24 * 16 {
            XCTAssertEqual(back.pixels[3 * i], back.pixels[3 * i + 1])
            XCTAssertEqual(back.pixels[3 * i], back.pixels[3 * i + 2])
            let p = image.pixels[3 * i..<3 * i + 3].map(Double.init)
            let luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
            XCTAssertEqual(Double(back.pixels[3 * i]), luma, accuracy: 8)
        }
    }

    func testCMYKJPEGEqualsPillow() throws {
        // Written by Pillow (Adobe, inverted CMYK); four flat quadrants.
        let image = try ImageCodec.decode(data: Fixtures.cmykJPEG, name: "cmyk.jpg")
        XCTAssertEqual(image.width, 8)
        XCTAssertEqual(image.pixels, Fixtures.cmykJPEGDecoded)
    }

    func testProgressiveJPEGDecodesLikeBaseline() throws {
        let image = noise(width: 33, height: 17, seed: 2)
        let baseline = try ImageCodec.encodeJPEG(image, quality: 80)
        let progressive = try ImageCodec.encodeJPEG(image, quality: 80, progressive: true)
        func hasMarker(_ b: [UInt8], _ m: UInt8) -> Bool { (0..<b.count - 1).contains { b[$0] == 0xFF && b[$0 + 1] == m } }
        XCTAssertTrue(hasMarker(progressive, 0xC2), "SOF2 (progressive) marker")
        XCTAssertFalse(hasMarker(baseline, 0xC2))
        // Same coefficients, coded differently: identical pixels.
        XCTAssertEqual(try ImageCodec.decode(data: progressive, name: "p.jpg"), try ImageCodec.decode(data: baseline, name: "b.jpg"))
    }

    func testPNGVariantsBecomeRGB() throws {
        let cases: [(String, [UInt8], [UInt8])] = [
            ("palette with transparency", Fixtures.palettePNG, Fixtures.palettePNGDecoded),
            ("gray + alpha", Fixtures.grayAlphaPNG, Fixtures.grayAlphaPNGDecoded),
            ("RGBA", Fixtures.rgbaPNG, Fixtures.rgbaPNGDecoded),
            // 16-bit: values v*257+3, so the high byte is v.
            ("16-bit RGB", Fixtures.rgb16PNG, [10, 20, 30, 40, 50, 60, 250, 128, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ]
        for (what, png, expected) in cases {
            let image = try ImageCodec.decode(data: png, name: what)
            XCTAssertEqual(image.width, 3, what)
            XCTAssertEqual(image.height, 2, what)
            XCTAssertEqual(image.pixels, expected, what)
        }
        let interlaced = try ImageCodec.decode(data: Fixtures.interlacedPNG, name: "adam7.png")
        XCTAssertEqual(interlaced.width, 5)
        XCTAssertEqual(interlaced.pixels, Fixtures.interlacedPNGDecoded)
    }

    func testFormatComesFromBytesNotExtension() throws {
        let image = noise(width: 4, height: 3, seed: 3)
        let url = try file("actually-a-png.jpg", try ImageCodec.encodePNG(image))
        XCTAssertEqual(try ImageCodec.decode(contentsOf: url), image)
    }

    func testBadFilesAreErrorsThatNameTheFile() throws {
        let jpeg = try ImageCodec.encodeJPEG(noise(width: 64, height: 64, seed: 4), quality: 90)
        let png = try ImageCodec.encodePNG(noise(width: 64, height: 64, seed: 5))
        var corrupt = jpeg
        for i in 200..<corrupt.count - 2 { corrupt[i] = 0xFF }
        let cases: [(name: String, bytes: [UInt8], says: String)] = [
            ("empty.jpg", [], "empty (0 bytes)"),
            ("text.jpg", Array("hello, world".utf8), "not a JPEG or PNG"),
            ("page.jpg", Array("<!DOCTYPE html><html>".utf8), "HTML"),
            ("anim.png", Array("GIF89a".utf8) + [0, 0, 0, 0], "GIF"),
            ("cut.jpg", Array(jpeg.prefix(jpeg.count * 6 / 10)), "truncated"),
            ("head-only.jpg", Array(jpeg.prefix(100)), "cannot decode JPEG"),
            ("cut.png", Array(png.prefix(png.count / 2)), "truncated"),
            ("bad-crc.png", Array(png.prefix(60)) + [png[60] ^ 0x5A] + Array(png.dropFirst(61)), "CRC"),
            ("garbage.jpg", corrupt, "cannot decode JPEG"),
        ]
        for c in cases {
            let url = try file("bad/" + c.name, c.bytes)
            let text = message { _ = try ImageCodec.decode(contentsOf: url) }
            XCTAssertTrue(text.contains(url.path), "\(c.name): \(text)")
            XCTAssertTrue(text.contains(c.says), "\(c.name): expected '\(c.says)' in: \(text)")
        }
        let missing = temp.appendingPathComponent("missing.jpg")
        let text = message { _ = try ImageCodec.decode(contentsOf: missing) }
        XCTAssertTrue(text.contains(missing.path) && text.contains("no such file"), text)
        let folder = message { _ = try ImageCodec.decode(contentsOf: self.temp) }
        XCTAssertTrue(folder.contains("folder"), folder)
    }

    func testHugeHeadersAreRefusedBeforeAllocating() throws {
        // A real 8x8 JPEG whose SOF0 claims 20000x20000.
        var jpeg = try ImageCodec.encodeJPEG(noise(width: 8, height: 8, seed: 6))
        let sof = try XCTUnwrap((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange(sof + 5..<sof + 9, with: [0x4E, 0x20, 0x4E, 0x20])
        let j = message { _ = try ImageCodec.decode(data: jpeg, name: "huge.jpg") }
        XCTAssertTrue(j.contains("huge.jpg") && j.contains("20000x20000") && j.contains("megapixel"), j)

        var png = try ImageCodec.encodePNG(noise(width: 8, height: 8, seed: 7))
        png.replaceSubrange(16..<24, with: [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20])
        let crc = pngCRC32(Array(png[12..<29]))
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        let p = message { _ = try ImageCodec.decode(data: png, name: "huge.png") }
        XCTAssertTrue(p.contains("huge.png") && p.contains("20000x20000") && p.contains("megapixel"), p)
    }

    // MARK: - Resize

    func testResizeKeepsConstantImagesConstant() {
        let flat = RGBImage(width: 17, height: 11, red: 200, green: 7, blue: 99)
        for (w, h) in [(5, 3), (40, 30), (17, 4), (1, 1), (150, 150)] {
            let r = resize(flat, height: h, width: w)
            XCTAssertEqual(r, RGBImage(width: w, height: h, red: 200, green: 7, blue: 99), "\(w)x\(h)")
        }
    }

    func testDownscaleAveragesAChecker() {
        // 2x2 black/white checker to 1x1: (0 + 255 + 255 + 0) / 4 = 127.5, rounded up as Pillow.
        let checker = RGBImage(width: 2, height: 2, pixels: [0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0])
        XCTAssertEqual(resize(checker, height: 1, width: 1).pixels, [128, 128, 128])
        // A one-pixel checker halved: every output mixes both colours (antialiased), where
        // nearest or plain bilinear sampling would give pure 0 or 255.
        var fine: [UInt8] = []
        for y in 0..<8 { for x in 0..<8 { fine += Array(repeating: (x + y) % 2 == 0 ? 0 : 255, count: 3) } }
        let half = resize(RGBImage(width: 8, height: 8, pixels: fine), height: 4, width: 4)
        XCTAssertTrue(half.pixels.allSatisfy { (90...165).contains($0) }, "\(half.pixels)")
    }

    func testResizeEqualsPillowBilinear() {
        let source = RGBImage(width: 7, height: 5, pixels: Fixtures.resizeSource7x5)
        let cases: [(Int, Int, [UInt8])] = [
            (3, 2, Fixtures.resize7x5to3x2), (11, 9, Fixtures.resize7x5to11x9), (4, 8, Fixtures.resize7x5to4x8),
            (7, 3, Fixtures.resize7x5to7x3), (2, 5, Fixtures.resize7x5to2x5),
        ]
        for (w, h, expected) in cases {
            let r = resize(source, height: h, width: w)
            XCTAssertEqual(r.width, w)
            XCTAssertEqual(r.height, h)
            // Tolerance 1 level is what the spec asks; the implementation is in fact bit-exact.
            XCTAssertLessThanOrEqual(maxDifference(r.pixels, expected), 1, "\(w)x\(h)")
            XCTAssertEqual(r.pixels, expected, "\(w)x\(h) bit-exact")
        }
        XCTAssertEqual(resize(source, height: 5, width: 7), source)
    }

    // MARK: - Preprocessing

    func testPreprocessingModes() throws {
        let image = RGBImage(width: 2, height: 1, pixels: [10, 20, 30, 255, 0, 128])
        let caffe = Preprocessing.caffe.apply(image)
        let expectedCaffe: [Float] = [30 - 103.939, 20 - 116.779, 10 - 123.68, 128 - 103.939, 0 - 116.779, 255 - 123.68]
        for (a, b) in zip(caffe, expectedCaffe) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        let torch = Preprocessing.torch.apply(image)
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        for i in 0..<6 {
            XCTAssertEqual(torch[i], (Float(image.pixels[i]) / 255 - mean[i % 3]) / std[i % 3], accuracy: 1e-6)
        }
        XCTAssertEqual(torch[0], -1.94666, accuracy: 1e-4)  // (10/255 - 0.485) / 0.229
        let rescale = Preprocessing.rescale.apply(image)
        for i in 0..<6 { XCTAssertEqual(rescale[i], Float(image.pixels[i]) / 255, accuracy: 1e-7) }
        XCTAssertEqual(rescale[3], 1)

        var buffer = [Float](repeating: .nan, count: 6)
        buffer.withUnsafeMutableBufferPointer { Preprocessing.caffe.apply(image, into: $0.baseAddress!) }
        XCTAssertEqual(buffer, caffe)
        // Keras' InceptionV3 (mode 'tf'): x / 127.5 - 1 in float32.
        let tf = Preprocessing.tf.apply(image)
        XCTAssertEqual(tf, image.pixels.map { Float($0) / 127.5 - 1 })
        XCTAssertEqual([tf[3], tf[4]], [1, -1])
        XCTAssertEqual(Preprocessing.allCases.map(\.rawValue), ["caffe", "torch", "rescale", "tf"])

        let spec = InputSpec(height: 150, width: 150, preprocessing: .caffe)
        let json = try JSONEncoder().encode(spec)
        XCTAssertEqual(try JSONDecoder().decode(InputSpec.self, from: json), spec)
        XCTAssertEqual(spec.prepare(image).count, 150 * 150 * 3)
    }

    // MARK: - Class folders

    func touch(_ relative: String, in root: URL, bytes: [UInt8] = []) throws {
        _ = try file(root.lastPathComponent + "/" + relative, bytes)
    }

    func testClassFolderOrderEqualsPython() throws {
        let root = temp.appendingPathComponent("tree")
        // Expected values are from Python: sorted(os.listdir) for classes and Keras'
        // sorted(os.walk(...), key=dirpath) + sorted(files) within each class.
        for f in ["a/img10.jpg", "a/img2.jpg", "a/Img3.JPG", "a/z.png", "a/\u{E4}.jpeg", "a/notes.txt", "a/a.jpeg.bak",
                  "b/x.jpg", "b/sub/y.jpg", "b/sub b/w.jpg", "b/sub-c/v.jpg", "b/sub/deeper/u.jpg",
                  "B/q.png", "a b/p.jpg", "\u{E9}/1.jpg", "e\u{301}/2.jpg", "Zed/3.png"] {
            try touch(f, in: root)
        }
        let source = try ClassFolderSource(directory: root)
        XCTAssertEqual(source.classNames.map { Array($0.unicodeScalars) },
                       ["B", "Zed", "a", "a b", "b", "e\u{301}", "\u{E9}"].map { Array($0.unicodeScalars) })
        let relative = source.files.map { (String($0.path.dropFirst(root.path.count + 1)), $0.label) }
        let expected: [(String, Int)] = [
            ("B/q.png", 0), ("Zed/3.png", 1),
            ("a/Img3.JPG", 2), ("a/img10.jpg", 2), ("a/img2.jpg", 2), ("a/z.png", 2), ("a/\u{E4}.jpeg", 2),
            ("a b/p.jpg", 3),
            ("b/x.jpg", 4), ("b/sub/y.jpg", 4), ("b/sub b/w.jpg", 4), ("b/sub-c/v.jpg", 4), ("b/sub/deeper/u.jpg", 4),
            ("e\u{301}/2.jpg", 5), ("\u{E9}/1.jpg", 6),
        ]
        XCTAssertEqual(relative.map { Array($0.0.unicodeScalars) }, expected.map { Array($0.0.unicodeScalars) })
        XCTAssertEqual(relative.map(\.1), expected.map(\.1))
        XCTAssertEqual(source.count, 15)
        XCTAssertEqual(source.ignoredFiles, 2)
        XCTAssertTrue(source.warnings.contains { $0.contains("ignored 2 files") }, "\(source.warnings)")
        XCTAssertEqual(source.label(2), 2)
        XCTAssertEqual(source.name(0), root.path + "/B/q.png")
        XCTAssertEqual(source.classCounts, [1, 1, 5, 1, 5, 1, 1])
    }

    func testClassFolderErrorsAndWarnings() throws {
        let missing = temp.appendingPathComponent("nope")
        XCTAssertTrue(message { _ = try ClassFolderSource(directory: missing) }.contains("\(missing.path) does not exist"))

        let flat = temp.appendingPathComponent("flat")
        try touch("a.jpg", in: flat)
        try touch("b.jpg", in: flat)
        let noClasses = message { _ = try ClassFolderSource(directory: flat) }
        XCTAssertTrue(noClasses.contains("no class subfolders") && noClasses.contains("2 images directly"), noClasses)

        let one = temp.appendingPathComponent("one")
        try touch("cats/c1.jpg", in: one)
        XCTAssertEqual(message { _ = try ClassFolderSource(directory: one) }, "found 1 class 'cats' in \(one.path); need at least 2: add one subfolder of images per class")
        XCTAssertEqual(try ClassFolderSource(directory: one, minClasses: 1).count, 1)

        let empty = temp.appendingPathComponent("empty")
        try touch("cats/readme.txt", in: empty)
        try FileManager.default.createDirectory(at: empty.appendingPathComponent("dogs"), withIntermediateDirectories: true)
        let none = message { _ = try ClassFolderSource(directory: empty) }
        XCTAssertTrue(none.contains("no .jpg/.jpeg/.png images") && none.contains("cats, dogs"), none)

        let partial = temp.appendingPathComponent("partial")
        try touch("cats/c.jpg", in: partial)
        try touch("loose.png", in: partial)
        try FileManager.default.createDirectory(at: partial.appendingPathComponent("dogs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: partial.appendingPathComponent(".ipynb_checkpoints"), withIntermediateDirectories: true)
        let source = try ClassFolderSource(directory: partial)
        XCTAssertEqual(source.classNames, ["cats", "dogs"])
        XCTAssertTrue(source.warnings.contains { $0.contains("class 'dogs' has no") }, "\(source.warnings)")
        XCTAssertTrue(source.warnings.contains { $0.contains(".ipynb_checkpoints") }, "\(source.warnings)")
        XCTAssertTrue(source.warnings.contains { $0.contains("1 image directly") }, "\(source.warnings)")
    }

    func testClassFolderImagesDecode() throws {
        let root = temp.appendingPathComponent("pets")
        let cat = noise(width: 6, height: 5, seed: 8)
        try touch("cats/c.png", in: root, bytes: try ImageCodec.encodePNG(cat))
        try touch("dogs/d.jpg", in: root, bytes: try ImageCodec.encodeJPEG(gradient(width: 9, height: 7)))
        let source = try ClassFolderSource(directory: root)
        XCTAssertEqual(try source.image(0), cat)
        XCTAssertEqual(try source.image(1).width, 9)
        XCTAssertEqual(source.labels, [0, 1])
    }

    // MARK: - Augmentation

    func testAugmentationIdentityAndFlip() {
        let image = noise(width: 9, height: 6, seed: 9)
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(Augmentation().apply(image, rng: &rng), image)
        XCTAssertEqual(Augmentation.apply(.identity, to: image), image)

        let flipped = Augmentation.apply(Augmentation.Transform(flipHorizontal: true), to: image)
        for y in 0..<6 { for x in 0..<9 { XCTAssertTrue(flipped[x, y] == image[8 - x, y]) } }

        var sawFlip = false, sawSame = false
        for seed in 0..<32 as Range<UInt64> {
            var g = SeededGenerator(seed: seed)
            let out = Augmentation(horizontalFlip: true).apply(image, rng: &g)
            if out == image { sawSame = true } else if out == flipped { sawFlip = true } else { XCTFail("flip-only augmentation did something else") }
        }
        XCTAssertTrue(sawFlip && sawSame)
    }

    func testAugmentationIsDeterministic() {
        let image = gradient(width: 20, height: 16)
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let x = Augmentation.tutorial.apply(image, rng: &a)
        XCTAssertEqual(x, Augmentation.tutorial.apply(image, rng: &b))
        XCTAssertNotEqual(x, Augmentation.tutorial.apply(image, rng: &c))
        XCTAssertNotEqual(x, image)
        XCTAssertEqual(Augmentation.tutorial, Augmentation(rotation: 40, widthShift: 0.2, heightShift: 0.2, shear: 0.2, zoom: 0.2, horizontalFlip: true))
    }

    func testAugmentationShiftsAndRotatesByKnownAmounts() {
        let image = noise(width: 8, height: 8, seed: 10)
        // Keras/scipy convention: output (r, c) reads input (r + heightShift, c + widthShift),
        // clamped at the border (fill_mode nearest).
        let shifted = Augmentation.apply(Augmentation.Transform(heightShift: -1, widthShift: 2), to: image)
        for y in 0..<8 {
            for x in 0..<8 { XCTAssertTrue(shifted[x, y] == image[min(x + 2, 7), max(y - 1, 0)], "(\(x), \(y))") }
        }
        // 90 degrees about the centre of a square: output (r, c) = input (n-1-c, r).
        let rotated = Augmentation.apply(Augmentation.Transform(rotation: 90), to: image)
        for y in 0..<8 { for x in 0..<8 { XCTAssertTrue(rotated[x, y] == image[y, 7 - x]) } }
        // Random shifts stay within the fraction of the size.
        var g = SeededGenerator(seed: 5)
        for _ in 0..<100 {
            let t = Augmentation(widthShift: 0.25, heightShift: 0.1).randomTransform(height: 40, width: 80, rng: &g)
            XCTAssertLessThanOrEqual(abs(t.widthShift), 20)
            XCTAssertLessThanOrEqual(abs(t.heightShift), 4)
            XCTAssertEqual(t.rotation, 0)
        }
    }

    // MARK: - Batch loader

    /// n images of 4x4 whose every byte is 7*i, labels i % 3.
    func indexedSource(_ n: Int) -> ArraySource {
        var bytes: [UInt8] = []
        for i in 0..<n { bytes += Array(repeating: UInt8(7 * i % 256), count: 48) }
        return ArraySource(name: "indexed", images: bytes, count: n, height: 4, width: 4, channels: 3,
                           labels: (0..<n).map { $0 % 3 }, classNames: ["a", "b", "c"])
    }

    func collect(_ loader: BatchLoader, epoch: Int) -> [Batch] { Array(IteratorSequence(loader.batches(epoch: epoch))) }

    func testBatchLoaderVisitsEveryIndexOnceInOrder() {
        let source = indexedSource(10)
        let spec = InputSpec(height: 4, width: 4, preprocessing: .rescale)
        let plain = BatchLoader(source: source, batchSize: 4, input: spec, shuffle: false, seed: 1, workers: 3, prefetch: 1)
        XCTAssertEqual(plain.batchCount, 3)
        let batches = collect(plain, epoch: 0)
        XCTAssertEqual(batches.map(\.count), [4, 4, 2])  // the last partial batch is kept
        XCTAssertEqual(batches.flatMap(\.indices), Array(0..<10))

        let shuffled = BatchLoader(source: source, batchSize: 4, input: spec, shuffle: true, seed: 7)
        for epoch in 0..<3 {
            let order = collect(shuffled, epoch: epoch)
            let indices = order.flatMap(\.indices)
            XCTAssertEqual(indices.sorted(), Array(0..<10), "epoch \(epoch)")
            for batch in order {
                XCTAssertEqual(batch.x.count, batch.count * 48)
                XCTAssertEqual(batch.labels.count, batch.count)
                for (k, index) in batch.indices.enumerated() {
                    // Each image still carries its own pixels and its own label.
                    XCTAssertEqual(batch.x[k * 48] * 255, Float(7 * index), accuracy: 1e-3)
                    XCTAssertEqual(batch.labels[k], Float(index % 3))
                }
            }
        }
        let e0 = collect(shuffled, epoch: 0).flatMap(\.indices)
        let e1 = collect(shuffled, epoch: 1).flatMap(\.indices)
        XCTAssertNotEqual(e0, e1)
        XCTAssertNotEqual(e0, Array(0..<10))
        let again = BatchLoader(source: source, batchSize: 3, input: spec, shuffle: true, seed: 7, workers: 1)
        XCTAssertEqual(collect(again, epoch: 0).flatMap(\.indices), e0, "same seed, same order, whatever the batch size and workers")
        XCTAssertEqual(again.order(epoch: 1), e1)
    }

    func testBatchLoaderSubsetResizesAndIsDeterministicWithAugmentation() {
        let images = (0..<9).map { gradient(width: 10 + $0, height: 8) }
        let bytes = images.flatMap { resize($0, height: 12, width: 12).pixels }
        let source = ArraySource(name: "grad", images: bytes, count: 9, height: 12, width: 12, channels: 3,
                                 labels: (0..<9).map { $0 % 2 }, classNames: ["x", "y"])
        let spec = InputSpec(height: 16, width: 16, preprocessing: .caffe)
        func run(workers: Int, prefetch: Int, epoch: Int) -> [Batch] {
            collect(BatchLoader(source: source, indices: [8, 1, 3, 5, 7], batchSize: 2, input: spec, augmentation: .tutorial,
                                shuffle: true, seed: 3, workers: workers, prefetch: prefetch), epoch: epoch)
        }
        let a = run(workers: 1, prefetch: 1, epoch: 4)
        let b = run(workers: 4, prefetch: 3, epoch: 4)
        XCTAssertEqual(a.map(\.count), [2, 2, 1])
        XCTAssertEqual(a.flatMap(\.indices).sorted(), [1, 3, 5, 7, 8])
        XCTAssertEqual(a.flatMap(\.x).count, 5 * 16 * 16 * 3)
        XCTAssertEqual(a.flatMap(\.x), b.flatMap(\.x), "augmentation depends on (seed, epoch, index) only")
        XCTAssertNotEqual(run(workers: 2, prefetch: 2, epoch: 5).flatMap(\.x), a.flatMap(\.x))

        // Without augmentation the loader equals resize + preprocess.
        let plain = collect(BatchLoader(source: source, indices: [2], batchSize: 4, input: spec, shuffle: false, seed: 0), epoch: 0)
        XCTAssertEqual(plain[0].x, spec.prepare(try! source.image(2)))
        XCTAssertEqual(source.subset([2]).images, Array(bytes[2 * 432..<3 * 432]))
    }

    func testBatchLoaderSkipsAndReportsUnreadableImages() throws {
        let root = temp.appendingPathComponent("mixed")
        for i in 0..<5 { try touch("cats/c\(i).png", in: root, bytes: try ImageCodec.encodePNG(noise(width: 5, height: 5, seed: UInt64(i)))) }
        try touch("cats/c5.jpg", in: root, bytes: Array("not really".utf8))
        try touch("dogs/d0.jpg", in: root, bytes: [])
        try touch("dogs/d1.png", in: root, bytes: try ImageCodec.encodePNG(noise(width: 5, height: 5, seed: 9)))
        let source = try ClassFolderSource(directory: root)
        XCTAssertEqual(source.count, 8)
        let loader = BatchLoader(source: source, batchSize: 3, input: InputSpec(height: 5, width: 5, preprocessing: .rescale),
                                 shuffle: false, seed: 0, workers: 2)
        let batches = collect(loader, epoch: 0)
        XCTAssertEqual(batches.map(\.count), [3, 2, 1])
        XCTAssertEqual(batches.flatMap(\.indices), [0, 1, 2, 3, 4, 7])
        XCTAssertEqual(batches[1].x.count, 2 * 75)
        XCTAssertEqual(batches[2].labels, [1])
        let failures = batches.flatMap(\.failures)
        XCTAssertEqual(failures.map(\.name), [root.path + "/cats/c5.jpg", root.path + "/dogs/d0.jpg"])
        XCTAssertTrue(failures[0].reason.contains("not a JPEG or PNG"), failures[0].reason)
        XCTAssertTrue(failures[1].reason.contains("empty"), failures[1].reason)
    }

    func testBatchLoaderStopsWhenDroppedEarly() {
        let loader = BatchLoader(source: indexedSource(30), batchSize: 2, input: InputSpec(height: 8, width: 8, preprocessing: .torch),
                                 shuffle: true, seed: 1, workers: 2, prefetch: 2)
        var iterator: AnyIterator<Batch>? = loader.batches(epoch: 0)
        XCTAssertEqual(iterator?.next()?.count, 2)
        iterator = nil
        XCTAssertEqual(collect(loader, epoch: 0).count, 15)
        XCTAssertTrue(collect(BatchLoader(source: indexedSource(3), indices: [], batchSize: 2, input: InputSpec(height: 4, width: 4, preprocessing: .caffe),
                                          shuffle: true, seed: 1), epoch: 0).isEmpty)
    }

    func testStratifiedSplit() {
        let labels = Array(repeating: 0, count: 10) + Array(repeating: 1, count: 5) + [2] + Array(repeating: 0, count: 10)
        let (train, validation) = stratifiedSplit(labels: labels, fraction: 0.2, seed: 11)
        XCTAssertEqual(Set(train).intersection(validation), [])
        XCTAssertEqual((train + validation).sorted(), Array(0..<labels.count))
        XCTAssertEqual(validation.filter { labels[$0] == 0 }.count, 4)
        XCTAssertEqual(validation.filter { labels[$0] == 1 }.count, 1)
        XCTAssertEqual(validation.filter { labels[$0] == 2 }.count, 0, "a class of one keeps its image for training")
        XCTAssertTrue(stratifiedSplit(labels: labels, fraction: 0.2, seed: 11) == (train, validation))
        XCTAssertNotEqual(stratifiedSplit(labels: labels, fraction: 0.2, seed: 12).validation, validation)
        XCTAssertEqual(stratifiedSplit(labels: [0, 0, 1, 1], fraction: 0.9, seed: 1).train.count, 2)
    }

    // MARK: - IDX and CIFAR-10

    func idxBytes(type: UInt8 = 8, dims: [Int], data: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return b + data
    }

    func testIDXRawAndGzip() throws {
        let pixels = (0..<3 * 2 * 4).map { UInt8($0 * 10) }
        let images = idxBytes(dims: [3, 2, 4], data: pixels)
        let labels = idxBytes(dims: [3], data: [2, 0, 9])
        let raw = try IDX.load(images: try file("imgs-idx3-ubyte", images), labels: try file("lbls-idx1-ubyte", labels),
                               classNames: IDX.fashionMNISTClasses)
        let gz = try IDX.load(images: try file("imgs-idx3-ubyte.gz", gzipStored(images)),
                              labels: try file("lbls-idx1-ubyte.gz", gzipStored(labels)), classNames: IDX.fashionMNISTClasses)
        for source in [raw, gz] {
            XCTAssertEqual(source.count, 3)
            XCTAssertEqual(source.labels, [2, 0, 9])
            XCTAssertEqual(source.classNames[9], "Ankle boot")
            let second = try source.image(1)
            XCTAssertEqual(second.width, 4)
            XCTAssertEqual(second.height, 2)
            XCTAssertEqual(second[1, 0].r, 90)  // gray replicated to RGB
            XCTAssertEqual(second[1, 0].b, 90)
        }
        XCTAssertEqual(try IDX.load(images: try file("a", images), labels: try file("b", labels), classNames: []).classNames.count, 10)

        let few = message { _ = try IDX.load(images: try self.file("i2", images), labels: try self.file("l2", self.idxBytes(dims: [2], data: [1, 1])), classNames: []) }
        XCTAssertTrue(few.contains("3 images") && few.contains("2 labels"), few)
        let cut = message { _ = try IDX.load(images: try self.file("i3", Array(images.dropLast(5))), labels: try self.file("l3", labels), classNames: []) }
        XCTAssertTrue(cut.contains("truncated"), cut)
        let badGz = message { _ = try IDX.load(images: try self.file("i4.gz", Array(gzipStored(images).dropLast(12))), labels: try self.file("l4", labels), classNames: []) }
        XCTAssertTrue(badGz.contains("i4.gz") && badGz.contains("gzip"), badGz)
    }

    func testCIFAR10Binary() throws {
        let dir = temp.appendingPathComponent("cifar-10-batches-bin")
        func record(label: UInt8, seed: UInt8) -> [UInt8] {
            [label] + (0..<1024).map { UInt8(truncatingIfNeeded: Int($0) + Int(seed)) }
                + Array(repeating: seed, count: 1024) + Array(repeating: 255 - seed, count: 1024)
        }
        for b in 1...5 { _ = try file("cifar-10-batches-bin/data_batch_\(b).bin", record(label: UInt8(b), seed: UInt8(b)) + record(label: 0, seed: 100)) }
        _ = try file("cifar-10-batches-bin/test_batch.bin", (0..<3).flatMap { record(label: 9, seed: UInt8($0)) })
        // Without batches.meta.txt the standard names are used.
        let (train, test) = try CIFAR10.load(directory: temp)  // the parent folder works too
        XCTAssertEqual(train.count, 10)
        XCTAssertEqual(test.count, 3)
        XCTAssertEqual(train.labels, [1, 0, 2, 0, 3, 0, 4, 0, 5, 0])
        XCTAssertEqual(train.classNames, CIFAR10.classNames)
        let image = try train.image(2)  // batch 2, first record: seed 2
        XCTAssertEqual(image.width, 32)
        XCTAssertTrue(image[5, 1] == (UInt8(32 + 5 + 2), 2, 253))  // planes to interleaved RGB
        XCTAssertEqual(test.name(1), "cifar-10 test[1]")

        _ = try file("cifar-10-batches-bin/batches.meta.txt", Array("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n".utf8))
        XCTAssertEqual(try CIFAR10.load(directory: dir).train.classNames, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])

        _ = try file("cifar-10-batches-bin/data_batch_3.bin", Array(record(label: 1, seed: 1).dropLast()))
        let bad = message { _ = try CIFAR10.load(directory: dir) }
        XCTAssertTrue(bad.contains("data_batch_3.bin") && bad.contains("3073"), bad)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("test_batch.bin"))
        _ = try file("cifar-10-batches-bin/data_batch_3.bin", record(label: 1, seed: 1))
        let missing = message { _ = try CIFAR10.load(directory: dir) }
        XCTAssertTrue(missing.contains("test_batch.bin") && missing.contains("cifar-10-binary.tar.gz"), missing)
    }

    func testRealFashionMNIST() throws {
        let dir = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
        guard FileManager.default.fileExists(atPath: dir.path) else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        let (train, test) = try IDX.loadFashionMNIST(directory: dir)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.height, 28)
        XCTAssertEqual(train.width, 28)
        XCTAssertEqual(train.channels, 1)
        XCTAssertEqual(train.classNames, IDX.fashionMNISTClasses)
        XCTAssertEqual(Array(train.labels.prefix(10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        XCTAssertEqual(Array(test.labels.prefix(5)), [9, 2, 1, 1, 6])
        XCTAssertEqual(train.classCounts, Array(repeating: 6000, count: 10))
        XCTAssertEqual(try train.image(0).pixels.enumerated().filter { $0.offset % 3 == 0 }.map { Int($0.element) }.reduce(0, +), 76247)
        XCTAssertEqual(train.name(123), "fashion-mnist train[123]")
    }

    // MARK: - Throughput (VGGTL_BENCH=1; prints, asserts nothing about time)

    func testThroughputBenchmark() throws {
        guard ProcessInfo.processInfo.environment["VGGTL_BENCH"] == "1" else { throw XCTSkip("set VGGTL_BENCH=1 to measure") }
        var pixels: [UInt8] = []
        var g = SeededGenerator(seed: 1)
        for y in 0..<375 {
            for x in 0..<500 {
                let n = UInt8(truncatingIfNeeded: g.next() % 24)
                pixels += [UInt8((x * 255 / 499) / 2) &+ n, UInt8((y * 255 / 374) / 2) &+ n, UInt8(((x + y) % 256) / 2) &+ n]
            }
        }
        let photo = RGBImage(width: 500, height: 375, pixels: pixels)
        let jpeg = try ImageCodec.encodeJPEG(photo, quality: 90)
        let n = 200
        var start = Date()
        for _ in 0..<n { _ = try ImageCodec.decode(data: jpeg, name: "bench.jpg") }
        let decode = Double(n) / Date().timeIntervalSince(start)
        start = Date()
        for _ in 0..<n { _ = resize(photo, height: 150, width: 150) }
        let resizeRate = Double(n) / Date().timeIntervalSince(start)
        let spec = InputSpec(height: 150, width: 150, preprocessing: .caffe)
        start = Date()
        for _ in 0..<n { _ = spec.prepare(try ImageCodec.decode(data: jpeg, name: "bench.jpg")) }
        let chain = Double(n) / Date().timeIntervalSince(start)
        let root = temp.appendingPathComponent("bench")
        for i in 0..<n { try touch("c\(i % 2)/\(i).jpg", in: root, bytes: jpeg) }
        let source = try ClassFolderSource(directory: root)
        for augmentation in [nil, Augmentation.tutorial] {
            let loader = BatchLoader(source: source, batchSize: 32, input: spec, augmentation: augmentation, shuffle: true, seed: 1)
            start = Date()
            let count = IteratorSequence(loader.batches(epoch: 0)).reduce(0) { $0 + $1.count }
            let rate = Double(count) / Date().timeIntervalSince(start)
            print(String(format: "BENCH loader (%d workers%@): %.0f images/s", loader.workers, augmentation == nil ? "" : ", tutorial augmentation", rate))
        }
        print(String(format: "BENCH 500x375 JPEG decode: %.0f/s; resize to 150x150: %.0f/s; decode+resize+caffe: %.0f/s (1 thread)", decode, resizeRate, chain))
    }
}

// MARK: - Test helpers

/// CRC-32 (zlib's), for patching PNG chunks and writing gzip.
private func pngCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A valid gzip file using deflate "stored" blocks: exercises the gzip path without a compressor.
private func gzipStored(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255]
    var offset = 0
    repeat {
        let n = min(65535, data.count - offset)
        let final: UInt8 = offset + n == data.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += data[offset..<offset + n]
        offset += n
    } while offset < data.count
    let crc = pngCRC32(data), size = UInt32(truncatingIfNeeded: data.count)
    for v in [crc, size] { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    return out
}

/// Bytes made with Pillow (see the note at the top of the file).
enum Fixtures {
    static let pillowJPEG: [UInt8] = [
        255, 216, 255, 224, 0, 16, 74, 70, 73, 70, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 255, 219, 0, 67,
        0, 5, 3, 4, 4, 4, 3, 5, 4, 4, 4, 5, 5, 5, 6, 7, 12, 8, 7, 7, 7, 7, 15, 11,
        11, 9, 12, 17, 15, 18, 18, 17, 15, 17, 17, 19, 22, 28, 23, 19, 20, 26, 21, 17, 17, 24, 33, 24,
        26, 29, 29, 31, 31, 31, 19, 23, 34, 36, 34, 30, 36, 28, 30, 31, 30, 255, 219, 0, 67, 1, 5, 5,
        5, 7, 6, 7, 14, 8, 8, 14, 30, 20, 17, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 255, 192, 0, 17, 8, 0, 8, 0, 16, 3,
        1, 34, 0, 2, 17, 1, 3, 17, 1, 255, 196, 0, 31, 0, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0,
        0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255, 196, 0, 181, 16, 0,
        2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125, 1, 2, 3, 0, 4, 17, 5, 18, 33,
        49, 65, 6, 19, 81, 97, 7, 34, 113, 20, 50, 129, 145, 161, 8, 35, 66, 177, 193, 21, 82, 209, 240, 36,
        51, 98, 114, 130, 9, 10, 22, 23, 24, 25, 26, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58,
        67, 68, 69, 70, 71, 72, 73, 74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102, 103, 104, 105, 106,
        115, 116, 117, 118, 119, 120, 121, 122, 131, 132, 133, 134, 135, 136, 137, 138, 146, 147, 148, 149, 150, 151, 152, 153,
        154, 162, 163, 164, 165, 166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196, 197, 198,
        199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 241,
        242, 243, 244, 245, 246, 247, 248, 249, 250, 255, 196, 0, 31, 1, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255, 196, 0, 181, 17, 0,
        2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119, 0, 1, 2, 3, 17, 4, 5, 33, 49,
        6, 18, 65, 81, 7, 97, 113, 19, 34, 50, 129, 8, 20, 66, 145, 161, 177, 193, 9, 35, 51, 82, 240, 21,
        98, 114, 209, 10, 22, 36, 52, 225, 37, 241, 23, 24, 25, 26, 38, 39, 40, 41, 42, 53, 54, 55, 56, 57,
        58, 67, 68, 69, 70, 71, 72, 73, 74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102, 103, 104, 105,
        106, 115, 116, 117, 118, 119, 120, 121, 122, 130, 131, 132, 133, 134, 135, 136, 137, 138, 146, 147, 148, 149, 150, 151,
        152, 153, 154, 162, 163, 164, 165, 166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196,
        197, 198, 199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 226, 227, 228, 229, 230, 231, 232, 233, 234,
        242, 243, 244, 245, 246, 247, 248, 249, 250, 255, 218, 0, 12, 3, 1, 0, 2, 17, 3, 17, 0, 63, 0, 161,
        165, 252, 51, 243, 30, 37, 22, 131, 121, 3, 174, 63, 92, 140, 159, 235, 93, 102, 153, 240, 203, 115, 121, 77,
        17, 141, 72, 225, 89, 121, 201, 244, 245, 226, 138, 42, 248, 215, 138, 115, 20, 165, 239, 255, 0, 95, 121, 226,
        240, 39, 17, 227, 239, 31, 123, 250, 185, 255, 217,
    ]
    static let pillowJPEGDecoded: [UInt8] = [
        36, 34, 255, 32, 28, 247, 34, 24, 234, 45, 21, 221, 65, 15, 210, 86, 20, 205, 98, 24, 199, 103, 18, 182,
        126, 29, 186, 143, 27, 176, 164, 25, 168, 194, 40, 172, 196, 35, 151, 198, 25, 132, 225, 31, 130, 220, 16, 113,
        18, 29, 235, 53, 60, 255, 60, 63, 254, 66, 55, 237, 94, 57, 233, 100, 47, 213, 104, 43, 199, 138, 66, 212,
        133, 49, 187, 149, 46, 177, 174, 48, 173, 197, 56, 169, 200, 52, 150, 209, 49, 137, 232, 51, 132, 231, 40, 118,
        42, 76, 244, 50, 83, 246, 55, 84, 238, 61, 76, 221, 77, 66, 205, 92, 65, 194, 107, 72, 192, 124, 78, 187,
        146, 88, 190, 152, 75, 169, 173, 73, 161, 185, 70, 147, 197, 75, 136, 220, 84, 134, 232, 77, 121, 230, 65, 107,
        47, 111, 243, 44, 108, 234, 57, 116, 234, 77, 121, 230, 96, 113, 217, 113, 116, 209, 123, 118, 200, 119, 103, 176,
        152, 121, 188, 157, 109, 167, 178, 108, 160, 179, 93, 132, 191, 97, 121, 220, 114, 128, 230, 105, 113, 238, 103, 109,
        18, 115, 212, 44, 139, 231, 48, 139, 222, 55, 133, 207, 87, 138, 204, 95, 130, 188, 97, 124, 171, 120, 138, 174,
        137, 141, 170, 157, 142, 163, 186, 148, 163, 187, 132, 137, 192, 132, 121, 220, 145, 122, 235, 141, 113, 254, 151, 120,
        34, 160, 221, 49, 174, 230, 54, 175, 220, 57, 164, 200, 76, 155, 185, 89, 154, 174, 107, 164, 173, 134, 180, 178,
        132, 163, 155, 150, 164, 147, 173, 162, 140, 185, 161, 127, 206, 174, 125, 228, 184, 123, 239, 176, 109, 249, 176, 107,
        33, 183, 207, 35, 185, 202, 56, 200, 208, 72, 205, 202, 87, 193, 183, 110, 199, 181, 132, 212, 183, 135, 207, 167,
        142, 200, 152, 160, 199, 144, 167, 183, 121, 185, 187, 112, 210, 205, 114, 225, 205, 106, 239, 201, 94, 246, 198, 88,
        49, 213, 215, 64, 227, 224, 63, 221, 207, 65, 209, 186, 92, 211, 183, 110, 212, 173, 124, 217, 170, 153, 237, 178,
        156, 227, 159, 186, 238, 163, 190, 219, 137, 200, 215, 120, 207, 213, 105, 208, 202, 82, 240, 215, 88, 255, 229, 99,
    ]
    static let cmykJPEG: [UInt8] = [
        255, 216, 255, 238, 0, 14, 65, 100, 111, 98, 101, 0, 100, 0, 0, 0, 0, 0, 255, 219, 0, 67, 0, 2,
        1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 2, 2, 4, 3, 2, 2, 2, 2, 5, 4, 4, 3,
        4, 6, 5, 6, 6, 6, 5, 6, 6, 6, 7, 9, 8, 6, 7, 9, 7, 6, 6, 8, 11, 8, 9, 10,
        10, 10, 10, 10, 6, 8, 11, 12, 11, 10, 12, 9, 10, 10, 10, 255, 192, 0, 20, 8, 0, 8, 0, 8,
        4, 67, 17, 0, 77, 17, 0, 89, 17, 0, 75, 17, 0, 255, 196, 0, 31, 0, 0, 1, 5, 1, 1, 1,
        1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255, 196,
        0, 181, 16, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125, 1, 2, 3, 0, 4,
        17, 5, 18, 33, 49, 65, 6, 19, 81, 97, 7, 34, 113, 20, 50, 129, 145, 161, 8, 35, 66, 177, 193, 21,
        82, 209, 240, 36, 51, 98, 114, 130, 9, 10, 22, 23, 24, 25, 26, 37, 38, 39, 40, 41, 42, 52, 53, 54,
        55, 56, 57, 58, 67, 68, 69, 70, 71, 72, 73, 74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102,
        103, 104, 105, 106, 115, 116, 117, 118, 119, 120, 121, 122, 131, 132, 133, 134, 135, 136, 137, 138, 146, 147, 148, 149,
        150, 151, 152, 153, 154, 162, 163, 164, 165, 166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194,
        195, 196, 197, 198, 199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 225, 226, 227, 228, 229, 230, 231,
        232, 233, 234, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 255, 218, 0, 14, 4, 67, 0, 77, 0, 89, 0,
        75, 0, 0, 63, 0, 253, 22, 255, 0, 130, 47, 127, 193, 50, 255, 0, 225, 221, 31, 240, 178, 127, 226, 246,
        127, 194, 99, 255, 0, 9, 143, 246, 63, 252, 203, 127, 217, 255, 0, 100, 251, 39, 219, 191, 233, 230, 111, 51,
        127, 218, 127, 217, 219, 179, 190, 120, 253, 22, 253, 187, 63, 224, 153, 127, 240, 243, 143, 248, 69, 191, 226, 246,
        127, 194, 17, 255, 0, 8, 71, 219, 191, 230, 91, 254, 210, 251, 111, 219, 62, 207, 255, 0, 79, 48, 121, 123,
        62, 203, 254, 214, 239, 51, 182, 222, 126, 148, 248, 109, 241, 39, 254, 34, 79, 251, 111, 252, 73, 127, 225, 75,
        255, 0, 194, 151, 242, 255, 0, 229, 231, 254, 18, 63, 237, 143, 237, 125, 223, 236, 217, 125, 159, 202, 254, 203,
        255, 0, 166, 155, 252, 255, 0, 224, 217, 243, 126, 169, 127, 193, 68, 62, 63, 255, 0, 195, 53, 255, 0, 194,
        31, 255, 0, 20, 151, 246, 215, 246, 215, 246, 135, 252, 191, 253, 155, 201, 242, 126, 205, 255, 0, 76, 223, 118,
        124, 223, 108, 109, 239, 158, 63, 255, 217,
    ]
    static let cmykJPEGDecoded: [UInt8] = [
        54, 225, 244, 53, 227, 246, 53, 225, 244, 53, 225, 244, 216, 64, 80, 215, 63, 81, 214, 64, 80, 216, 64, 80,
        53, 227, 246, 51, 228, 245, 54, 228, 245, 54, 224, 245, 214, 65, 79, 214, 62, 81, 215, 62, 81, 214, 63, 80,
        52, 226, 244, 54, 224, 243, 53, 225, 243, 53, 230, 246, 214, 61, 80, 215, 64, 82, 215, 64, 79, 215, 63, 81,
        53, 227, 246, 54, 227, 246, 52, 227, 247, 53, 224, 242, 217, 64, 82, 214, 64, 81, 213, 62, 80, 216, 63, 80,
        224, 224, 54, 222, 224, 55, 225, 224, 54, 225, 226, 57, 132, 132, 131, 135, 135, 136, 135, 135, 135, 135, 135, 135,
        227, 225, 56, 222, 225, 52, 226, 225, 55, 225, 222, 55, 135, 136, 135, 134, 135, 134, 134, 133, 134, 134, 134, 134,
        224, 225, 55, 225, 223, 56, 224, 222, 55, 225, 228, 55, 134, 132, 134, 135, 135, 135, 134, 135, 134, 135, 135, 135,
        225, 225, 55, 223, 224, 55, 226, 225, 55, 225, 226, 55, 134, 133, 134, 133, 134, 134, 136, 135, 136, 134, 134, 134,
    ]
    static let palettePNG: [UInt8] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2,
        8, 3, 0, 0, 0, 170, 170, 150, 40, 0, 0, 3, 0, 80, 76, 84, 69, 255, 0, 0, 0, 255, 0, 0,
        0, 255, 10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50, 19, 50, 26, 0, 0, 0,
        2, 116, 82, 78, 83, 255, 0, 229, 183, 48, 74, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 96, 96,
        100, 98, 96, 102, 98, 4, 0, 0, 38, 0, 10, 27, 28, 9, 121, 0, 0, 0, 0, 73, 69, 78, 68, 174,
        66, 96, 130,
    ]
    static let palettePNGDecoded: [UInt8] = [
        255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 0, 0, 255, 0, 255, 0,
    ]
    static let grayAlphaPNG: [UInt8] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2,
        8, 4, 0, 0, 0, 55, 125, 174, 145, 0, 0, 0, 22, 73, 68, 65, 84, 120, 156, 99, 224, 250, 159, 194,
        112, 162, 129, 129, 225, 191, 17, 251, 127, 70, 0, 35, 175, 4, 238, 147, 103, 151, 204, 0, 0, 0, 0, 73,
        69, 78, 68, 174, 66, 96, 130,
    ]
    static let grayAlphaPNGDecoded: [UInt8] = [
        10, 10, 10, 100, 100, 100, 200, 200, 200, 0, 0, 0, 50, 50, 50, 255, 255, 255,
    ]
    static let rgbaPNG: [UInt8] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2,
        8, 6, 0, 0, 0, 157, 116, 102, 26, 0, 0, 0, 34, 73, 68, 65, 84, 120, 156, 99, 96, 100, 98, 102,
        208, 48, 178, 105, 56, 113, 233, 206, 127, 22, 14, 54, 22, 54, 35, 57, 174, 61, 230, 122, 202, 79, 0, 84,
        152, 7, 48, 12, 159, 46, 222, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
    ]
    static let rgbaPNGDecoded: [UInt8] = [
        1, 2, 3, 40, 50, 60, 200, 210, 220, 9, 8, 7, 90, 80, 70, 255, 0, 255,
    ]
    static let rgb16PNG: [UInt8] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2,
        16, 2, 0, 0, 0, 66, 134, 45, 14, 0, 0, 0, 46, 73, 68, 65, 84, 120, 156, 99, 224, 226, 21, 17,
        151, 83, 212, 208, 54, 50, 181, 177, 255, 245, 183, 161, 153, 129, 153, 129, 145, 133, 137, 149, 153, 141, 133, 157,
        149, 131, 141, 147, 157, 139, 131, 155, 147, 7, 0, 125, 192, 5, 41, 63, 79, 1, 89, 0, 0, 0, 0, 73,
        69, 78, 68, 174, 66, 96, 130,
    ]
    static let interlacedPNG: [UInt8] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 5, 0, 0, 0, 5,
        8, 2, 0, 0, 1, 117, 10, 129, 36, 0, 0, 0, 97, 73, 68, 65, 84, 120, 156, 1, 86, 0, 169, 255,
        0, 166, 201, 117, 0, 200, 168, 35, 0, 91, 88, 212, 155, 197, 248, 0, 250, 9, 179, 0, 147, 164, 40, 0,
        137, 173, 33, 198, 49, 101, 171, 116, 71, 0, 62, 224, 249, 193, 76, 78, 0, 19, 143, 22, 5, 67, 228, 0,
        137, 174, 120, 49, 196, 207, 0, 151, 246, 146, 234, 27, 249, 180, 127, 42, 216, 114, 101, 29, 161, 33, 0, 135,
        129, 79, 129, 54, 240, 145, 115, 34, 55, 240, 240, 244, 136, 219, 118, 6, 39, 232, 117, 79, 167, 169, 0, 0,
        0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
    ]
    static let interlacedPNGDecoded: [UInt8] = [
        166, 201, 117, 62, 224, 249, 250, 9, 179, 193, 76, 78, 200, 168, 35, 151, 246, 146, 234, 27, 249, 180, 127, 42,
        216, 114, 101, 29, 161, 33, 137, 173, 33, 19, 143, 22, 198, 49, 101, 5, 67, 228, 171, 116, 71, 135, 129, 79,
        129, 54, 240, 145, 115, 34, 55, 240, 240, 244, 136, 219, 91, 88, 212, 137, 174, 120, 147, 164, 40, 49, 196, 207,
        155, 197, 248,
    ]
    static let resizeSource7x5: [UInt8] = [
        180, 101, 116, 168, 153, 42, 102, 55, 218, 41, 90, 156, 221, 9, 171, 60, 134, 239, 245, 48, 115, 22, 237, 194,
        194, 136, 11, 147, 131, 100, 116, 96, 157, 227, 40, 10, 201, 244, 164, 60, 226, 224, 57, 205, 242, 20, 217, 119,
        38, 53, 199, 245, 163, 218, 138, 230, 167, 86, 160, 218, 244, 183, 22, 4, 175, 78, 251, 12, 223, 215, 35, 148,
        94, 109, 178, 86, 123, 8, 136, 215, 86, 168, 104, 81, 68, 15, 58, 39, 81, 5, 219, 28, 47, 173, 36, 77,
        215, 161, 105, 160, 210, 234, 80, 32, 15,
    ]
    static let resize7x5to3x2: [UInt8] = [
        116, 150, 121, 139, 103, 146, 156, 153, 154, 105, 94, 119, 154, 103, 128, 144, 158, 107,
    ]
    static let resize7x5to11x9: [UInt8] = [
        180, 101, 116, 175, 125, 82, 162, 144, 58, 120, 82, 170, 80, 68, 195, 41, 90, 156, 156, 38, 166, 177, 43, 190,
        75, 123, 233, 161, 87, 171, 245, 48, 115, 127, 146, 142, 150, 147, 92, 171, 141, 45, 133, 99, 139, 99, 85, 170,
        66, 92, 156, 166, 45, 132, 191, 61, 144, 118, 157, 205, 149, 136, 180, 183, 107, 151, 40, 222, 185, 108, 184, 108,
        187, 137, 23, 156, 126, 86, 130, 112, 129, 108, 95, 157, 184, 58, 74, 215, 90, 67, 189, 214, 159, 128, 218, 194,
        81, 206, 212, 38, 223, 215, 73, 199, 144, 115, 165, 67, 104, 117, 121, 126, 107, 159, 173, 126, 184, 183, 125, 118,
        177, 147, 109, 153, 199, 178, 145, 207, 159, 142, 207, 134, 57, 205, 242, 40, 210, 186, 22, 202, 126, 33, 98, 177,
        113, 93, 206, 245, 163, 218, 177, 206, 186, 124, 211, 181, 91, 166, 213, 172, 173, 111, 244, 183, 22, 28, 188, 151,
        82, 149, 163, 148, 98, 176, 140, 60, 172, 145, 76, 180, 161, 133, 196, 128, 157, 122, 111, 176, 97, 113, 189, 139,
        161, 162, 95, 202, 139, 55, 11, 157, 76, 109, 95, 132, 227, 21, 193, 219, 30, 153, 174, 59, 148, 103, 101, 167,
        101, 118, 73, 111, 151, 41, 135, 207, 95, 149, 149, 87, 158, 96, 74, 47, 68, 65, 75, 64, 71, 119, 55, 78,
        188, 38, 80, 192, 41, 92, 147, 60, 111, 163, 117, 87, 167, 165, 103, 154, 206, 174, 128, 127, 104, 109, 56, 37,
        68, 15, 58, 55, 45, 34, 55, 76, 9, 170, 42, 36, 202, 31, 58, 173, 36, 77, 200, 116, 95, 200, 174, 140,
        165, 206, 222, 116, 113, 115, 80, 32, 15,
    ]
    static let resize7x5to4x8: [UInt8] = [
        171, 121, 89, 98, 84, 165, 138, 57, 180, 165, 83, 171, 141, 151, 99, 120, 101, 136, 161, 74, 137, 149, 145, 178,
        98, 190, 116, 145, 122, 104, 189, 102, 89, 131, 222, 183, 59, 199, 163, 110, 119, 160, 168, 165, 157, 158, 191, 136,
        65, 170, 173, 122, 96, 183, 139, 178, 154, 164, 168, 103, 115, 105, 146, 182, 55, 172, 102, 141, 79, 151, 153, 82,
        88, 68, 82, 178, 45, 101, 151, 136, 100, 134, 131, 99, 63, 44, 35, 170, 41, 47, 192, 136, 123, 121, 114, 113,
    ]
    static let resize7x5to7x3: [UInt8] = [
        112, 159, 149, 179, 146, 29, 121, 88, 167, 73, 93, 156, 224, 22, 102, 120, 181, 207, 166, 124, 162, 37, 205, 195,
        110, 153, 118, 102, 66, 166, 183, 136, 196, 146, 164, 97, 123, 191, 177, 186, 175, 80, 41, 84, 67, 130, 51, 98,
        217, 31, 90, 139, 67, 120, 160, 145, 63, 150, 212, 171, 118, 63, 43,
    ]
    static let resize7x5to2x5: [UInt8] = [
        137, 97, 130, 140, 71, 181, 136, 143, 96, 161, 156, 132, 77, 165, 185, 155, 176, 163, 153, 76, 151, 129, 138, 84,
        125, 52, 46, 164, 119, 117,
    ]
}

import CImageSupport
import Foundation
import VGGTLTensors

/// JPEG and PNG reading and writing through libjpeg-turbo and libpng.
///
/// Decoding matches Pillow's `Image.open(f).convert("RGB")` (what Keras' `load_img` does):
/// default ISLOW IDCT and fancy upsampling, grayscale replicated, CMYK/YCCK read as Adobe
/// inverted CMYK, PNG alpha dropped (not composited). One difference: 16-bit grayscale PNGs
/// keep their high byte, where Pillow clips the 16-bit value to 255. EXIF orientation is
/// ignored, as `load_img` ignores it.
public enum ImageCodec {
    /// Headers claiming more pixels than this are refused before anything is allocated.
    public static let maxPixels = 100_000_000

    public static func decode(contentsOf url: URL) throws -> RGBImage {
        try decode(data: readFileBytes(url.path), name: url.path)
    }

    /// Decodes JPEG or PNG bytes, recognised by their first bytes (not by any file name).
    /// `name` is used in error messages.
    public static func decode(data: [UInt8], name: String) throws -> RGBImage {
        switch ImageFormat(sniffing: data) {
        case .jpeg: return try decodeWith(vgg_jpeg_decode, data, name: name, format: "JPEG")
        case .png: return try decodeWith(vgg_png_decode, data, name: name, format: "PNG")
        case .empty:
            throw VGGTLError.invalidArgument("\(name): the file is empty (0 bytes); delete it or replace it with a JPEG or PNG image")
        case let .other(kind):
            throw VGGTLError.invalidArgument("\(name): not a JPEG or PNG image (\(kind)); convert it to JPEG or PNG, or move it out of the dataset")
        }
    }

    /// JPEG bytes of an image. `grayscale` stores one channel (luma, as Pillow's convert("L")).
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 90, grayscale: Bool = false,
                                  progressive: Bool = false) throws -> [UInt8] {
        try checkEncodable(image)
        guard (1...100).contains(quality) else {
            throw VGGTLError.invalidArgument("JPEG quality \(quality) is out of range: use 1...100")
        }
        let input = grayscale ? luma(image) : image.pixels
        return try encodeWith("JPEG") { out, size, message, messageSize in
            vgg_jpeg_encode(input, Int32(image.width), Int32(image.height), grayscale ? 1 : 3,
                            Int32(quality), progressive ? 1 : 0, out, size, message, messageSize)
        }
    }

    /// PNG bytes (8-bit RGB) of an image.
    public static func encodePNG(_ image: RGBImage) throws -> [UInt8] {
        try checkEncodable(image)
        return try encodeWith("PNG") { out, size, message, messageSize in
            vgg_png_encode(image.pixels, Int32(image.width), Int32(image.height), out, size, message, messageSize)
        }
    }

    public static func writeJPEG(_ image: RGBImage, to url: URL, quality: Int = 90,
                                 grayscale: Bool = false, progressive: Bool = false) throws {
        try write(encodeJPEG(image, quality: quality, grayscale: grayscale, progressive: progressive), to: url)
    }

    public static func writePNG(_ image: RGBImage, to url: URL) throws {
        try write(encodePNG(image), to: url)
    }

    // MARK: - Internals

    private typealias Decoder = (UnsafePointer<UInt8>?, Int, Int64, UnsafeMutablePointer<Int32>?,
                                 UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
                                 UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                 UnsafeMutablePointer<CChar>?, Int) -> Int32

    private static func decodeWith(_ decoder: Decoder, _ data: [UInt8], name: String, format: String) throws -> RGBImage {
        var width: Int32 = 0, height: Int32 = 0, components: Int32 = 0
        var pixels: UnsafeMutablePointer<UInt8>?
        let messageSize = 256
        var message = [CChar](repeating: 0, count: messageSize)
        let status = data.withUnsafeBufferPointer { bytes in
            decoder(bytes.baseAddress, bytes.count, Int64(maxPixels), &width, &height, &components,
                    &pixels, &message, messageSize)
        }
        switch status {
        case Int32(VGG_IMAGE_OK):
            guard let pixels else { throw VGGTLError.invalidArgument("\(name): the \(format) decoder returned no pixels") }
            defer { vgg_image_free(pixels) }
            let count = Int(width) * Int(height) * 3
            return RGBImage(width: Int(width), height: Int(height),
                            pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
        case Int32(VGG_IMAGE_TOO_LARGE):
            throw VGGTLError.invalidArgument("\(name): the \(format) header claims \(width)x\(height) pixels, more than the \(maxPixels / 1_000_000) megapixel limit; the file is corrupt or far larger than a training image should be: shrink it first")
        case Int32(VGG_IMAGE_NO_MEMORY):
            throw VGGTLError.invalidArgument("\(name): out of memory decoding a \(width)x\(height) \(format)")
        default:
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw VGGTLError.invalidArgument("\(name): cannot decode \(format) (\(explain(reason, data: data))); the file is damaged: re-download or re-export it, or remove it")
        }
    }

    /// libjpeg/libpng messages are terse; say "truncated" in the words users search for.
    private static func explain(_ reason: String, data: [UInt8]) -> String {
        let lower = reason.lowercased()
        if lower.contains("premature end") || lower.contains("unexpected end") || lower.contains("no image") {
            return "\(reason): the file is truncated after \(data.count) bytes"
        }
        return reason.isEmpty ? "unknown error" : reason
    }

    private static func encodeWith(_ format: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
                                                             UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>, Int) -> Int32) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { m in body(&out, &size, m.baseAddress!, m.count) }
        defer { if let out { vgg_image_free(out) } }
        guard status == Int32(VGG_IMAGE_OK), let out else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw VGGTLError.invalidArgument("cannot encode \(format): \(reason.isEmpty ? "out of memory" : reason)")
        }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    private static func checkEncodable(_ image: RGBImage) throws {
        guard image.width > 0, image.height > 0, image.width <= 65_500, image.height <= 65_500 else {
            throw VGGTLError.invalidArgument("cannot encode a \(image.width)x\(image.height) image: sides must be 1...65500")
        }
    }

    /// ITU-R 601 luma with Pillow's fixed-point rounding (convert("L")).
    private static func luma(_ image: RGBImage) -> [UInt8] {
        let n = image.width * image.height
        var gray = [UInt8](repeating: 0, count: n)
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let r = UInt32(p[3 * i]), g = UInt32(p[3 * i + 1]), b = UInt32(p[3 * i + 2])
                gray[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
            }
        }
        return gray
    }

    private static func write(_ bytes: [UInt8], to url: URL) throws {
        do {
            try Data(bytes).write(to: url)
        } catch {
            throw VGGTLError.invalidArgument("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// What a file's first bytes say it is.
enum ImageFormat: Equatable {
    case jpeg, png, empty
    case other(String)

    init(sniffing b: [UInt8]) {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + magic.count && Array(b[offset..<offset + magic.count]) == magic
        }
        if b.isEmpty { self = .empty; return }
        if starts([0xFF, 0xD8, 0xFF]) { self = .jpeg; return }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { self = .png; return }
        let known: [(magic: [UInt8], offset: Int, kind: String)] = [
            (Array("GIF8".utf8), 0, "a GIF image"), (Array("BM".utf8), 0, "a BMP image"),
            (Array("WEBP".utf8), 8, "a WebP image"), ([0x49, 0x49, 0x2A, 0x00], 0, "a TIFF image"),
            ([0x4D, 0x4D, 0x00, 0x2A], 0, "a TIFF image"), (Array("ftypheic".utf8), 4, "a HEIC image"),
            (Array("ftypavif".utf8), 4, "an AVIF image"), (Array("%PDF".utf8), 0, "a PDF document"),
            ([0x1F, 0x8B], 0, "gzip-compressed data"), (Array("<".utf8), 0, "text, probably an HTML page saved instead of the image"),
        ]
        if let k = known.first(where: { starts($0.magic, at: $0.offset) }) { self = .other(k.kind); return }
        if starts([0xFF, 0xD8]) { self = .other("a damaged JPEG: FF D8 not followed by a marker"); return }
        let head = b.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
        self = .other("it starts with bytes \(head)")
    }
}

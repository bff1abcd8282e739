import Foundation
import VGGTL

/// The starting corpus: small valid files written by vggtl's own writers (and, for IDX and
/// CIFAR-10, by hand in their documented layouts). `FUZZ_MAKE_SEEDS=DIR vggtl-fuzz` writes
/// DIR/<target>/seed-*; run.sh does it when a corpus folder is missing.
func makeSeeds(in dir: URL) throws {
    func put(_ target: String, _ name: String, _ bytes: [UInt8]) throws {
        let d = dir.appendingPathComponent(target)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try Data(bytes).write(to: d.appendingPathComponent("seed-" + name))
    }
    func image(_ w: Int, _ h: Int) -> RGBImage {
        RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 * 37 + $0 / 3) })
    }
    try put("jpeg", "rgb-8x8", ImageCodec.encodeJPEG(image(8, 8)))
    try put("jpeg", "gray-16x8", ImageCodec.encodeJPEG(image(16, 8), grayscale: true))
    try put("jpeg", "progressive-9x7", ImageCodec.encodeJPEG(image(9, 7), quality: 50, progressive: true))
    try put("jpeg", "1x1", ImageCodec.encodeJPEG(image(1, 1)))
    try put("png", "rgb-8x8", ImageCodec.encodePNG(image(8, 8)))
    try put("png", "3x5", ImageCodec.encodePNG(image(3, 5)))

    let tiny = WeightSet(tensors: [("block1_conv1/kernel", [3, 3, 1, 2], (0..<18).map { Float($0) / 7 }),
                                   ("block1_conv1/bias", [2], [0.5, -0.5]),
                                   ("predictions/kernel", [2, 1], [1, 2]), ("predictions/bias", [1], [0])],
                          metadata: ["format": "seed"])
    let tmp = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vggtl-seeds-\(getpid())")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    func written(_ name: String, _ write: (URL) throws -> Void) throws -> [UInt8] {
        let u = tmp.appendingPathComponent(name)
        try write(u)
        return [UInt8](try Data(contentsOf: u))
    }
    try put("hdf5", "keras2", written("a.h5") { try KerasH5.write(tiny, to: $0) })
    try put("hdf5", "keras1-names", written("b.h5") { try KerasH5.write(tiny, to: $0, options: .init(legacyNaming: true)) })
    try put("hdf5", "model-weights-vlen", written("c.h5") {
        try KerasH5.write(tiny, to: $0, options: .init(variableLengthStrings: true, modelWeightsGroup: true))
    })
    try put("safetensors", "tiny", written("a.safetensors") { try Safetensors.write(tiny, to: $0) })
    try put("npy", "float32-2x3", written("a.npy") { try NPY.write([1, 2, 3, 4, 5, 6], shape: [2, 3], to: $0) })
    try put("npy", "int64-labels", written("b.npy") { try NPY.writeInt64([0, 1, 1], shape: [3], to: $0) })

    // IDX: two big-endian bytes = length of the images file, then images, then labels.
    let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3] + (0..<18).map { UInt8($0 * 13) }
    let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]
    try put("idx", "2x3x3", [UInt8(images.count >> 8), UInt8(images.count & 0xFF)] + images + labels)
    let rgb: [UInt8] = [0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3] + (0..<12).map { UInt8($0 * 20) }
    try put("idx", "1x2x2x3", [0, UInt8(rgb.count)] + rgb + [0, 0, 8, 1, 0, 0, 0, 1, 4])
    // CIFAR-10: records of 1 label byte and 3072 bytes of R, G, B planes.
    var records: [UInt8] = []
    for r in 0..<2 {
        records.append(UInt8(r * 7))
        for i in 0..<3072 { records.append(UInt8(truncatingIfNeeded: i * (r + 3))) }
    }
    try put("cifar10", "2-records", records)
}

import Foundation
import VGGTLTensors

/// CIFAR-10, binary version (cifar-10-binary.tar.gz): data_batch_1..5.bin, test_batch.bin and
/// batches.meta.txt. Each record is 1 label byte then 3072 bytes: the R, G and B planes of a
/// 32x32 image, rows top to bottom.
public enum CIFAR10 {
    public static let classNames = ["airplane", "automobile", "bird", "cat", "deer",
                                    "dog", "frog", "horse", "ship", "truck"]
    public static let downloadHint = "download the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it"

    /// `directory` may be the extracted cifar-10-batches-bin folder or the folder holding it.
    public static func load(directory: URL) throws -> (train: ArraySource, test: ArraySource) {
        var dir = directory.path
        let nested = dir + "/cifar-10-batches-bin"
        if !FileManager.default.fileExists(atPath: dir + "/data_batch_1.bin"),
           FileManager.default.fileExists(atPath: nested + "/data_batch_1.bin") {
            dir = nested
        }
        guard FileManager.default.fileExists(atPath: dir) else {
            throw VGGTLError.invalidArgument("CIFAR-10 folder \(dir) does not exist; \(downloadHint)")
        }
        if FileManager.default.fileExists(atPath: dir + "/data_batch_1"),
           !FileManager.default.fileExists(atPath: dir + "/data_batch_1.bin") {
            throw VGGTLError.invalidArgument("\(dir) holds the Python (pickle) version of CIFAR-10; vggtl reads the binary version: \(downloadHint)")
        }
        var names = classNames
        if let text = try? String(contentsOfFile: dir + "/batches.meta.txt", encoding: .utf8) {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if lines.count == 10 { names = lines }
        }
        let train = try readBatches((1...5).map { "\(dir)/data_batch_\($0).bin" }, name: "cifar-10 train", classNames: names)
        let test = try readBatches(["\(dir)/test_batch.bin"], name: "cifar-10 test", classNames: names)
        return (train, test)
    }

    private static func readBatches(_ paths: [String], name: String, classNames: [String]) throws -> ArraySource {
        let recordSize = 1 + 3072, plane = 1024
        var images = [UInt8]()
        var labels = [Int]()
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else {
                throw VGGTLError.invalidArgument("CIFAR-10 file \(path) is missing; \(downloadHint)")
            }
            let bytes = try readFileBytes(path)
            guard !bytes.isEmpty, bytes.count % recordSize == 0 else {
                throw VGGTLError.invalidArgument("\(path): \(bytes.count) bytes is not a whole number of \(recordSize)-byte CIFAR-10 records (truncated download?); \(downloadHint)")
            }
            let n = bytes.count / recordSize
            let start = images.count
            images.append(contentsOf: repeatElement(0, count: n * 3072))
            labels.reserveCapacity(labels.count + n)
            try bytes.withUnsafeBufferPointer { src in
                try images.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<n {
                        let rec = src.baseAddress! + r * recordSize
                        let label = Int(rec[0])
                        guard label < classNames.count else {
                            throw VGGTLError.invalidArgument("\(path): record \(r) has label \(label), but CIFAR-10 has \(classNames.count) classes; is this CIFAR-100? vggtl reads CIFAR-10")
                        }
                        labels.append(label)
                        // Planar (R plane, G plane, B plane) to interleaved HWC.
                        let out = dst.baseAddress! + start + r * 3072
                        for p in 0..<plane {
                            out[3 * p] = rec[1 + p]
                            out[3 * p + 1] = rec[1 + plane + p]
                            out[3 * p + 2] = rec[1 + 2 * plane + p]
                        }
                    }
                }
            }
        }
        return ArraySource(name: name, images: images, count: labels.count, height: 32, width: 32, channels: 3,
                           labels: labels, classNames: classNames)
    }
}

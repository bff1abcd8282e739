import Foundation
import VGGTLTensors

/// The IDX format of MNIST and Fashion-MNIST: a big-endian header (0, 0, type, dimensions,
/// then each dimension as a UInt32) and the data. Files may be gzip-compressed.
public enum IDX {
    public static let fashionMNISTClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Images (n x rows x cols, or n x rows x cols x 1|3) and labels (n) of unsigned bytes.
    /// With empty `classNames` the classes are named "0", "1", ... up to the largest label.
    public static func load(images: URL, labels: URL, classNames: [String]) throws -> ArraySource {
        try load(images: images, labels: labels, classNames: classNames, name: images.lastPathComponent)
    }

    /// A folder with train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz),
    /// t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz), as Debian's
    /// dataset-fashion-mnist installs in /usr/share/datasets/fashion-mnist.
    public static func loadFashionMNIST(directory: URL) throws -> (train: ArraySource, test: ArraySource) {
        let dir = directory.path
        func find(_ stem: String) throws -> URL {
            // The official names, and the "train-images.idx3-ubyte" spelling some mirrors use.
            let dotted = stem.replacingOccurrences(of: "-idx", with: ".idx")
            for candidate in [stem + ".gz", stem, dotted + ".gz", dotted] where FileManager.default.fileExists(atPath: dir + "/" + candidate) {
                return URL(fileURLWithPath: dir + "/" + candidate)
            }
            throw VGGTLError.invalidArgument("\(dir) has no \(stem)(.gz); Fashion-MNIST comes with Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist) or from https://github.com/zalandoresearch/fashion-mnist")
        }
        let train = try load(images: find("train-images-idx3-ubyte"), labels: find("train-labels-idx1-ubyte"),
                             classNames: fashionMNISTClasses, name: "fashion-mnist train")
        let test = try load(images: find("t10k-images-idx3-ubyte"), labels: find("t10k-labels-idx1-ubyte"),
                            classNames: fashionMNISTClasses, name: "fashion-mnist test")
        return (train, test)
    }

    static func load(images: URL, labels: URL, classNames: [String], name: String) throws -> ArraySource {
        let (imageDims, imageData) = try read(images)
        guard imageDims.count == 3 || (imageDims.count == 4 && (imageDims[3] == 1 || imageDims[3] == 3)) else {
            throw VGGTLError.invalidArgument("\(images.path): an IDX image file has 3 dimensions (count, rows, columns) or 4 ending in 1 or 3 channels; this one has \(imageDims)")
        }
        guard imageDims.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw VGGTLError.invalidArgument("\(images.path): IDX images of size \(imageDims.dropFirst().map(String.init).joined(separator: "x")) have no pixels; the file is corrupt")
        }
        let (labelDims, labelData) = try read(labels)
        guard labelDims.count == 1 else {
            throw VGGTLError.invalidArgument("\(labels.path): an IDX label file has 1 dimension; this one has \(labelDims); are images and labels swapped?")
        }
        guard labelDims[0] == imageDims[0] else {
            throw VGGTLError.invalidArgument("\(images.path) holds \(imageDims[0]) images but \(labels.path) holds \(labelDims[0]) labels; they must come from the same set")
        }
        let labelValues = labelData.map(Int.init)
        var names = classNames
        let largest = labelValues.max() ?? -1
        if names.isEmpty { names = (0...max(largest, 0)).map(String.init) }
        guard largest < names.count else {
            throw VGGTLError.invalidArgument("\(labels.path): label \(largest) but only \(names.count) class names are known")
        }
        return ArraySource(name: name, images: imageData, count: imageDims[0], height: imageDims[1], width: imageDims[2],
                           channels: imageDims.count == 4 ? imageDims[3] : 1, labels: labelValues, classNames: names)
    }

    /// Header dimensions and the unsigned-byte payload.
    static func read(_ url: URL) throws -> (dims: [Int], data: [UInt8]) {
        let path = url.path
        var bytes = try readFileBytes(path)
        if isGzip(bytes) { bytes = try gunzip(bytes, name: path) }
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw VGGTLError.invalidArgument("\(path) is not an IDX file (it should start with bytes 00 00, type, dimensions)")
        }
        guard bytes[2] == 0x08 else {
            throw VGGTLError.invalidArgument("\(path): IDX element type 0x\(String(bytes[2], radix: 16)) is not supported; vggtl reads unsigned-byte (0x08) files")
        }
        let ndim = Int(bytes[3])
        let headerSize = 4 + 4 * ndim
        guard ndim >= 1, bytes.count >= headerSize else {
            throw VGGTLError.invalidArgument("\(path): IDX header with \(ndim) dimensions is truncated")
        }
        let dims = (0..<ndim).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) }
        }
        // Dimensions come from the file: their product may overflow (a corrupt header).
        guard let total = checkedElementCount(dims) else {
            throw VGGTLError.invalidArgument("\(path): IDX header dimensions \(dims.map(String.init).joined(separator: "x")) are impossibly large; the file is corrupt: download it again")
        }
        guard bytes.count - headerSize >= total else {
            throw VGGTLError.invalidArgument("\(path): header says \(dims.map(String.init).joined(separator: "x")) = \(total) bytes but the file has \(bytes.count - headerSize); the file is truncated: download it again")
        }
        return (dims, Array(bytes[headerSize..<headerSize + total]))
    }
}

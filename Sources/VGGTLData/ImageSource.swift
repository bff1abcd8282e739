/// A labelled image collection addressed by index.
public protocol ImageSource: AnyObject, Sendable {
    var count: Int { get }
    var classNames: [String] { get }
    func label(_ i: Int) -> Int
    /// A name for messages: the file path, or "fashion-mnist train[123]".
    func name(_ i: Int) -> String
    func image(_ i: Int) throws -> RGBImage
    /// Several labels per image (`MultiLabelSource`): `classNames` are the labels, `targets`
    /// each image's multi-hot row over them, and `label(_:)` is 0 for every image.
    var isMultiLabel: Bool { get }
    /// What a batch carries for image i: its class index, or its multi-hot row.
    func targets(_ i: Int) -> [Float]
}

extension ImageSource {
    public var isMultiLabel: Bool { false }
    public func targets(_ i: Int) -> [Float] { [Float(label(i))] }

    /// Images per class.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for i in 0..<count { counts[label(i)] += 1 }
        return counts
    }

    /// All labels, in index order.
    public var labels: [Int] { (0..<count).map(label) }
}

/// In-memory images (CIFAR-10, IDX): uint8 HWC rows of one size, with labels.
/// Single-channel images are replicated to RGB when read.
public final class ArraySource: ImageSource {
    public let sourceName: String
    public let images: [UInt8]
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    public let labels: [Int]
    public let classNames: [String]

    public init(name: String, images: [UInt8], count: Int, height: Int, width: Int, channels: Int,
                labels: [Int], classNames: [String]) {
        precondition(channels == 1 || channels == 3, "ArraySource \(name): channels must be 1 or 3, got \(channels)")
        precondition(images.count == count * height * width * channels,
                     "ArraySource \(name): \(images.count) bytes for \(count) images of \(height)x\(width)x\(channels)")
        precondition(labels.count == count, "ArraySource \(name): \(labels.count) labels for \(count) images")
        precondition(labels.allSatisfy { $0 >= 0 && $0 < classNames.count },
                     "ArraySource \(name): labels must be in 0..<\(classNames.count)")
        self.sourceName = name
        self.images = images
        self.count = count
        self.height = height
        self.width = width
        self.channels = channels
        self.labels = labels
        self.classNames = classNames
    }

    public func label(_ i: Int) -> Int { labels[i] }

    public func name(_ i: Int) -> String { "\(sourceName)[\(i)]" }

    public func image(_ i: Int) throws -> RGBImage {
        precondition(i >= 0 && i < count, "\(sourceName): index \(i) out of 0..<\(count)")
        let n = height * width
        let start = i * n * channels
        if channels == 3 {
            return RGBImage(width: width, height: height, pixels: Array(images[start..<start + 3 * n]))
        }
        var pixels = [UInt8](repeating: 0, count: 3 * n)
        images.withUnsafeBufferPointer { src in
            for j in 0..<n {
                let v = src[start + j]
                pixels[3 * j] = v; pixels[3 * j + 1] = v; pixels[3 * j + 2] = v
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// A copy of the given rows, in the given order (names become "<name>[k]" of the subset).
    public func subset(_ indices: [Int]) -> ArraySource {
        let stride = height * width * channels
        var rows = [UInt8]()
        rows.reserveCapacity(indices.count * stride)
        for i in indices {
            precondition(i >= 0 && i < count, "\(sourceName): index \(i) out of 0..<\(count)")
            rows.append(contentsOf: images[i * stride..<(i + 1) * stride])
        }
        return ArraySource(name: sourceName, images: rows, count: indices.count, height: height, width: width,
                           channels: channels, labels: indices.map { labels[$0] }, classNames: classNames)
    }
}

/// A float32 array with a shape, living on one device.
///
/// Most tensors are contiguous and start at element 0 of their buffer. A network's memory plan
/// also makes views: a tensor stored at an `offset` in a shared buffer, and channel slices of an
/// NHWC tensor (a Concatenate's inputs write into their channels of its output) whose rows (the
/// last dimension) lie `rowStride` floats apart. Only the primitives that take offsets and strides
/// (`copyBlock`, `reluRows`, `reluBackwardRows`, `gemm`, `copy`) may be given a view that is not
/// contiguous from element 0; the layers that receive such views say so (see `ChannelSliceWriter`).
public final class Tensor {
    public let device: Device
    public let buffer: DeviceBuffer
    public private(set) var shape: [Int]
    /// Elements of `buffer` before this tensor's first element.
    public let offset: Int
    /// Distance in elements between the starts of consecutive rows (vectors of the last dimension).
    public let rowStride: Int

    public var count: Int { shape.reduce(1, *) }
    /// Size of the last dimension (1 for a scalar).
    public var rowLength: Int { shape.last ?? 1 }
    /// Number of rows (vectors of the last dimension).
    public var rows: Int { rowLength == 0 ? 0 : count / rowLength }
    /// Rows are adjacent (the tensor is one run of `count` floats from `offset`).
    public var isDense: Bool { rowStride == rowLength || rows <= 1 }
    /// Dense and starting at element 0: what every primitive without offsets expects.
    public var isContiguous: Bool { offset == 0 && isDense }

    public init(zeros shape: [Int], on device: Device, what: String = "tensor") throws {
        let count = shape.reduce(1, *)
        self.device = device
        self.shape = shape
        self.buffer = try device.allocate(max(count, 1), what: what)
        offset = 0; rowStride = shape.last ?? 1
        device.fill(buffer, value: 0, offset: 0, count: count)
    }

    public convenience init(_ values: [Float], shape: [Int], on device: Device, what: String = "tensor") throws {
        guard values.count == shape.reduce(1, *) else {
            throw VGGTLError.shapeMismatch(what: what, expected: shape, got: [values.count])
        }
        try self.init(uninitialized: shape, on: device, what: what)
        values.withUnsafeBufferPointer { device.write($0, to: buffer, offset: 0) }
    }

    public init(uninitialized shape: [Int], on device: Device, what: String = "tensor") throws {
        self.device = device
        self.shape = shape
        self.buffer = try device.allocate(max(shape.reduce(1, *), 1), what: what)
        offset = 0; rowStride = shape.last ?? 1
    }

    /// Same storage, another shape with the same count (Flatten, matrix views).
    public func reshape(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw VGGTLError.shapeMismatch(what: "reshape", expected: shape, got: newShape)
        }
        guard isDense else { throw VGGTLError.invalidArgument("reshape of a channel slice \(shape) (row stride \(rowStride))") }
        return Tensor(view: buffer, shape: newShape, on: device, offset: offset)
    }

    /// A view of `buffer`: `shape` stored from element `offset` with rows `rowStride` apart
    /// (default: adjacent rows).
    init(view buffer: DeviceBuffer, shape: [Int], on device: Device, offset: Int = 0, rowStride: Int? = nil) {
        self.device = device; self.buffer = buffer; self.shape = shape
        self.offset = offset; self.rowStride = rowStride ?? (shape.last ?? 1)
    }

    /// Channels `range` of this tensor's last dimension, without a copy: rows keep this tensor's stride.
    public func channels(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowLength, "channel range \(range) of \(shape)")
        var s = shape
        s[s.count - 1] = range.count
        return Tensor(view: buffer, shape: s, on: device, offset: offset + range.lowerBound, rowStride: rowStride)
    }

    /// Where row r starts: offset + r * rowStride.
    public var layout: RowLayout { RowLayout(offset: offset, stride: rowStride) }

    public func toArray() -> [Float] {
        let n = count
        if isDense {
            return [Float](unsafeUninitializedCapacity: n) { out, done in
                device.read(buffer, offset: offset, into: UnsafeMutableBufferPointer(rebasing: out[0..<n]))
                done = n
            }
        }
        // A channel slice: read the rows' whole span, then keep each row's channels.
        let span = (rows - 1) * rowStride + rowLength
        var all = [Float](repeating: 0, count: span)
        all.withUnsafeMutableBufferPointer { device.read(buffer, offset: offset, into: $0) }
        var out = [Float](); out.reserveCapacity(n)
        for r in 0..<rows { out += all[(r * rowStride)..<(r * rowStride + rowLength)] }
        return out
    }

    public func copy(to device: Device) throws -> Tensor {
        try Tensor(toArray(), shape: shape, on: device)
    }

    public func zero() {
        if isDense { device.fill(buffer, value: 0, offset: offset, count: count); return }
        for r in 0..<rows { device.fill(buffer, value: 0, offset: offset + r * rowStride, count: rowLength) }
    }
}

/// Where the rows of a (rows x cols) matrix view lie in a buffer: row r starts at offset + r * stride.
public struct RowLayout: Equatable, Sendable {
    public var offset: Int, stride: Int
    public init(offset: Int = 0, stride: Int) { self.offset = offset; self.stride = stride }
}

/// A float32 array with a shape, living on one device.
///
/// Most tensors are contiguous and start at element 0 of their buffer. A network's memory plan
/// also makes views: a tensor stored at an `offset` in a shared buffer, and channel slices of an
/// NHWC tensor (a Concatenate's inputs write into their channels of its output) whose rows (the
/// last dimension) lie `rowStride` floats apart. Only the primitives that take offsets and strides
/// (`copyBlock`, `reluRows`, `reluBackwardRows`, `gemm`, `copy`) may be given a view that is not
/// contiguous from element 0; the layers that receive such views say so
/// (`LayerMemory.writesChannelSlices`).
public final class Tensor {
    public let device: Device
    public let buffer: DeviceBuffer
    public private(set) var shape: [Int]
    /// Elements of `buffer` before this tensor's first element.
    public let offset: Int
    /// Distance in elements between the starts of consecutive rows (vectors of the last dimension).
    public let rowStride: Int
    /// Counts the writes made through the tensor's own API (`upload`, `zero`, `markChanged`),
    /// shared with its reshaped views. Convolution plans compare it before reusing a kernel they
    /// transformed earlier; a write straight through `device.write(_, to: buffer)` is not seen.
    private let changes: ChangeCounter

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
        changes = ChangeCounter()
        device.fill(buffer, value: 0, offset: 0, count: count)
    }

    public convenience init(_ values: [Float], shape: [Int], on device: Device, what: String = "tensor") throws {
        guard values.count == shape.reduce(1, *) else {
            throw VGGTLError.shapeMismatch(what: what, expected: shape, got: [values.count])
        }
        try self.init(uninitialized: shape, on: device, what: what)
        upload(values)
    }

    public init(uninitialized shape: [Int], on device: Device, what: String = "tensor") throws {
        self.device = device
        self.shape = shape
        self.buffer = try device.allocate(max(shape.reduce(1, *), 1), what: what)
        offset = 0; rowStride = shape.last ?? 1
        changes = ChangeCounter()
    }

    /// Same storage, another shape with the same count (Flatten, matrix views).
    public func reshape(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw VGGTLError.shapeMismatch(what: "reshape", expected: shape, got: newShape)
        }
        guard isDense else { throw VGGTLError.invalidArgument("reshape of a channel slice \(shape) (row stride \(rowStride))") }
        return Tensor(view: buffer, shape: newShape, on: device, offset: offset, rowStride: nil, changes: changes)
    }

    /// A view of `buffer` (a network's planned storage, a shared buffer): `shape` stored from
    /// element `offset` with rows `rowStride` apart (default: adjacent rows), with a version of its own.
    package convenience init(view buffer: DeviceBuffer, shape: [Int], on device: Device, offset: Int = 0, rowStride: Int? = nil) {
        self.init(view: buffer, shape: shape, on: device, offset: offset, rowStride: rowStride, changes: nil)
    }

    /// The same with `changes`: the version counter of the tensor it views (reshape, channels).
    fileprivate init(view buffer: DeviceBuffer, shape: [Int], on device: Device, offset: Int, rowStride: Int?, changes: ChangeCounter?) {
        self.device = device; self.buffer = buffer; self.shape = shape
        self.offset = offset; self.rowStride = rowStride ?? (shape.last ?? 1)
        self.changes = changes ?? ChangeCounter()
    }

    /// Channels `range` of this tensor's last dimension, without a copy: rows keep this tensor's stride.
    public func channels(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowLength, "channel range \(range) of \(shape)")
        var s = shape
        s[s.count - 1] = range.count
        return Tensor(view: buffer, shape: s, on: device, offset: offset + range.lowerBound, rowStride: rowStride, changes: changes)
    }

    /// The same storage and version, as a tensor of `device`: a forwarding device hands its
    /// tensors (whose buffers belong to the device underneath) on to that device's plans.
    func viewed(on device: Device) -> Tensor {
        Tensor(view: buffer, shape: shape, on: device, offset: offset, rowStride: rowStride, changes: changes)
    }

    /// See `changes`: a number that differs after every write through this tensor's API.
    public var version: UInt64 { changes.value }

    /// Records that the contents changed through something other than this tensor's API (an
    /// optimizer's update kernel): cached transforms of them are then recomputed.
    public func markChanged() { changes.value &+= 1 }

    /// Overwrites the first `values.count` floats from `offset` (blocking) and marks the change.
    public func upload(_ values: UnsafeBufferPointer<Float>, offset: Int = 0) {
        precondition(isContiguous, "upload into a view")
        device.write(values, to: buffer, offset: offset)
        markChanged()
    }

    public func upload(_ values: [Float], offset: Int = 0) {
        values.withUnsafeBufferPointer { upload($0, offset: offset) }
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
        if isDense { device.fill(buffer, value: 0, offset: offset, count: count) } else {
            for r in 0..<rows { device.fill(buffer, value: 0, offset: offset + r * rowStride, count: rowLength) }
        }
        markChanged()
    }
}

/// Where the rows of a (rows x cols) matrix view lie in a buffer: row r starts at offset + r * stride.
public struct RowLayout: Equatable, Sendable {
    public var offset: Int, stride: Int
    public init(offset: Int = 0, stride: Int) { self.offset = offset; self.stride = stride }
}

/// The version counter a tensor shares with its views.
private final class ChangeCounter {
    var value: UInt64 = 0
}

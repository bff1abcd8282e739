/// A float32 array with a shape, living on one device.
public final class Tensor {
    public let device: Device
    public let buffer: DeviceBuffer
    public private(set) var shape: [Int]
    /// Counts the writes made through the tensor's own API (`upload`, `zero`, `markChanged`),
    /// shared with its reshaped views. Convolution plans compare it before reusing a kernel they
    /// transformed earlier; a write straight through `device.write(_, to: buffer)` is not seen.
    private let changes: ChangeCounter

    public var count: Int { shape.reduce(1, *) }

    public init(zeros shape: [Int], on device: Device, what: String = "tensor") throws {
        let count = shape.reduce(1, *)
        self.device = device
        self.shape = shape
        self.buffer = try device.allocate(max(count, 1), what: what)
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
        changes = ChangeCounter()
    }

    /// Same storage, another shape with the same count (Flatten, matrix views).
    public func reshape(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw VGGTLError.shapeMismatch(what: "reshape", expected: shape, got: newShape)
        }
        return Tensor(sharing: self, shape: newShape)
    }

    /// The first count(shape) floats of `buffer` (a shared, possibly larger, buffer).
    init(view buffer: DeviceBuffer, shape: [Int], on device: Device) {
        self.device = device; self.buffer = buffer; self.shape = shape
        changes = ChangeCounter()
    }

    private init(sharing t: Tensor, shape: [Int]) {
        device = t.device; buffer = t.buffer; self.shape = shape; changes = t.changes
    }

    /// See `changes`: a number that differs after every write through this tensor's API.
    public var version: UInt64 { changes.value }

    /// Records that the contents changed through something other than this tensor's API (an
    /// optimizer's update kernel): cached transforms of them are then recomputed.
    public func markChanged() { changes.value &+= 1 }

    /// Overwrites the first `values.count` floats from `offset` (blocking) and marks the change.
    public func upload(_ values: UnsafeBufferPointer<Float>, offset: Int = 0) {
        device.write(values, to: buffer, offset: offset)
        markChanged()
    }

    public func upload(_ values: [Float], offset: Int = 0) {
        values.withUnsafeBufferPointer { upload($0, offset: offset) }
    }

    public func toArray() -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, done in
            device.read(buffer, offset: 0, into: UnsafeMutableBufferPointer(rebasing: out[0..<n]))
            done = n
        }
    }

    public func copy(to device: Device) throws -> Tensor {
        try Tensor(toArray(), shape: shape, on: device)
    }

    public func zero() {
        device.fill(buffer, value: 0, offset: 0, count: count)
        markChanged()
    }
}

/// The version counter a tensor shares with its views.
private final class ChangeCounter {
    var value: UInt64 = 0
}

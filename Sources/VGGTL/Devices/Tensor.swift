/// A float32 array with a shape, living on one device.
public final class Tensor {
    public let device: Device
    public let buffer: DeviceBuffer
    public private(set) var shape: [Int]

    public var count: Int { shape.reduce(1, *) }

    public init(zeros shape: [Int], on device: Device, what: String = "tensor") throws {
        let count = shape.reduce(1, *)
        self.device = device
        self.shape = shape
        self.buffer = try device.allocate(max(count, 1), what: what)
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
    }

    private init(sharing t: Tensor, shape: [Int]) {
        device = t.device; buffer = t.buffer; self.shape = shape
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

    public func zero() { device.fill(buffer, value: 0, offset: 0, count: count) }
}

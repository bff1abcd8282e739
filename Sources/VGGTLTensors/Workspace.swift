import Foundation

/// Scratch memory of one device (im2col tiles, Winograd tiles, transformed kernels of layers
/// that train), owned by that device and freed with it. Ops on a device run in order, so one
/// buffer, grown to the largest request and reused after, serves every convolution on it.
package final class Workspace {
    private var buffer: DeviceBuffer?
    private let lock = NSLock()

    package init() {}

    /// At least `count` floats; the contents are undefined. A larger request replaces the buffer
    /// (the old one is freed first, so peak memory is the new size).
    package func get(_ count: Int, on device: Device) throws -> DeviceBuffer {
        lock.lock(); defer { lock.unlock() }
        if let b = buffer, b.count >= count { return b }
        buffer = nil
        let b = try device.allocate(max(count, 1), what: "convolution workspace")
        buffer = b
        return b
    }

    /// Floats held now (0 before the first convolution).
    var floats: Int {
        lock.lock(); defer { lock.unlock() }
        return buffer?.count ?? 0
    }

    /// The buffer held now, for tests that check two devices do not share one.
    var current: DeviceBuffer? {
        lock.lock(); defer { lock.unlock() }
        return buffer
    }
}

import Foundation

/// Scratch memory reused across ops and steps (im2col tiles), one per device. Ops on one device
/// run in order, so a single growing buffer is safe to share between them.
final class Workspace {
    private var buffer: DeviceBuffer?
    private let lock = NSLock()
    private static var byDevice: [ObjectIdentifier: Workspace] = [:]
    private static let registry = NSLock()

    static func of(_ device: Device) -> Workspace {
        registry.lock(); defer { registry.unlock() }
        let key = ObjectIdentifier(device)
        if let w = byDevice[key] { return w }
        let w = Workspace()
        byDevice[key] = w
        return w
    }

    func get(_ count: Int, on device: Device) throws -> DeviceBuffer {
        lock.lock(); defer { lock.unlock() }
        if let b = buffer, b.count >= count { return b }
        buffer = nil
        let b = try device.allocate(count, what: "convolution workspace")
        buffer = b
        return b
    }
}

/// The largest im2col tile (in floats) a convolution uses; bounds memory at VGG16 sizes
/// (a whole im2col of block1_conv2 at batch 32 would be 3.7 GB).
public var convolutionTileFloats = 16 << 20

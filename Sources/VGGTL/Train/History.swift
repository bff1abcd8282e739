import Foundation

/// One row per epoch, as Keras' History / CSVLogger keep it.
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    public var loss: Double, accuracy: Double
    public var valLoss: Double?, valAccuracy: Double?
    public var learningRate: Double
    public var seconds: Double
}

public struct History: Codable, Equatable, Sendable {
    public var records: [EpochRecord] = []
    public init(records: [EpochRecord] = []) { self.records = records }

    public var csv: String {
        var s = "epoch,loss,acc,val_loss,val_acc,lr,seconds\n"
        for r in records {
            s += "\(r.epoch),\(fmt(r.loss)),\(fmt(r.accuracy)),\(r.valLoss.map(fmt) ?? ""),\(r.valAccuracy.map(fmt) ?? ""),\(fmt(r.learningRate)),\(String(format: "%.2f", r.seconds))\n"
        }
        return s
    }

    private func fmt(_ v: Double) -> String { String(format: "%.6g", v) }
}

/// Writes `text` to `url` atomically: a temp file in the same folder, fsync, rename. A crash
/// at any moment leaves either the old file or the new one under the final name.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
        throw VGGTLError.invalidArgument("cannot write \(url.path): the folder \(dir.path) is not writable or does not exist")
    }
    do {
        let handle = try FileHandle(forWritingTo: tmp)
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        guard rename(tmp.path, url.path) == 0 else { throw VGGTLError.invalidArgument("cannot rename \(tmp.path) to \(url.path): \(String(cString: strerror(errno)))") }
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        if let e = error as? VGGTLError { throw e }
        throw VGGTLError.invalidArgument("cannot write \(url.path): \(error.localizedDescription)")
    }
}

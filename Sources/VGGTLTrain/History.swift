import Foundation
import VGGTLIO

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

/// Writes `data` to `url` atomically: a temp file in the same folder, fsync, rename, fsync of
/// the folder. A crash at any moment leaves either the old file or the new one under the final
/// name; a failed write (disk full) leaves the old one and no temporary file.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(data, to: url, beforeRename: {})
}

package func writeAtomically(_ data: Data, to url: URL, beforeRename: () -> Void) throws {
    let w = try AtomicFileWriter(url)
    try data.withUnsafeBytes { try w.write($0) }
    try w.commit(beforeRename: beforeRename)
}

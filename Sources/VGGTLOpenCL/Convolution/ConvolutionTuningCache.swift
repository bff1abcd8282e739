import Foundation
import VGGTLTensors

/// The autotuner's choices on disk, next to the kernel binaries: one small file per (device,
/// driver, pass, geometry, candidate list), holding the name of the algorithm that measured
/// fastest. Best effort, like the binary cache: a missing or unreadable entry only costs a retune.
struct ConvolutionTuningCache {
    let directory: URL
    /// Platform, device and driver identity (OpenCLDevice.programIdentity).
    let identity: [String]

    func key(pass: String, geometry g: WindowGeometry, candidates: [String]) -> String {
        let shape = "\(g.batch)x\(g.inH)x\(g.inW)x\(g.inC) k\(g.kH)x\(g.kW) s\(g.strideH)x\(g.strideW) p\(g.padTop),\(g.padLeft) -> \(g.outH)x\(g.outW)x\(g.outC)"
        return KernelCache.key(["vggtl-conv-tuning-1"] + identity + [pass, shape] + candidates)
    }

    func load(_ key: String) -> String? {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(key + ".txt")) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// Atomic: a temporary file, then rename(2).
    func store(_ choice: String, key: String) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            let temp = directory.appendingPathComponent(".\(key).\(getpid()).\(UInt32.random(in: 0 ... .max)).tmp")
            try Data((choice + "\n").utf8).write(to: temp)
            if rename(temp.path, directory.appendingPathComponent(key + ".txt").path) != 0 { try? fm.removeItem(at: temp) }
        } catch {
            // Best effort: the next run tunes again.
        }
    }
}

import Foundation
import VGGTLTensors

/// Keras-like progress: "12/63 [=====>........] - ETA: 1:23 - loss: 0.4123 - acc: 0.8125 - 35.2 img/s".
/// Redrawn in place on a terminal; on a pipe or file only the epoch's final line is printed.
/// A transient bar (validation) shows only on a terminal and is erased when done.
public final class ProgressBar {
    private let total: Int
    private let start = Date()
    private let interactive = isatty(STDOUT_FILENO) != 0
    private let label: String?
    private let transient: Bool
    private var lastDraw = Date.distantPast
    private var drawn = 0

    public init(total: Int, label: String? = nil, transient: Bool = false) {
        self.total = total; self.label = label; self.transient = transient
    }

    public func update(_ done: Int, images: Int, metrics: [(String, Double)], final: Bool = false) {
        let now = Date()
        if transient {
            guard interactive else { return }
            if final {
                if drawn > 0 { print("\r" + String(repeating: " ", count: drawn) + "\r", terminator: ""); flushStandardOutput() }
                return
            }
        }
        guard final || (interactive && now.timeIntervalSince(lastDraw) > 0.2) else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "=", count: max(filled - (done < total ? 1 : 0), 0)) + (done < total ? ">" : "")
            + String(repeating: ".", count: width - filled)
        var line = (label.map { "\($0) " } ?? "") + "\(String(repeating: " ", count: String(total).count - String(done).count))\(done)/\(total) [\(bar)]"
        if done < total, done > 0 { line += " - ETA: \(clock(elapsed / Double(done) * Double(total - done)))" } else { line += " - \(clock(elapsed))" }
        for (name, value) in metrics { line += " - \(name): \(String(format: "%.4f", value))" }
        line += String(format: " - %.1f img/s", Double(images) / max(elapsed, 1e-9))
        if interactive { print("\r\(line)", terminator: final ? "\n" : ""); drawn = line.count } else if final { print(line) }
        flushStandardOutput()
    }
}

func clock(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// Predicted classes from logits: argmax for softmax heads, logit > 0 for one sigmoid unit.
public func predictedClasses(logits: [Float], rows: Int) -> [Int] {
    let units = logits.count / max(rows, 1)
    return (0..<rows).map { r in
        if units == 1 { return logits[r] > 0 ? 1 : 0 }
        var best = 0
        for j in 1..<units where logits[r * units + j] > logits[r * units + best] { best = j }
        return best
    }
}

/// Class probabilities from logits (softmax rows, or sigmoid for one unit -> [1-p, p]).
public func probabilities(logits: [Float], rows: Int) -> [[Float]] {
    let units = logits.count / max(rows, 1)
    return (0..<rows).map { r in
        if units == 1 { let p = 1 / (1 + expf(-logits[r])); return [1 - p, p] }
        let row = logits[(r * units)..<((r + 1) * units)]
        let m = row.max()!
        let e = row.map { expf($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

/// Accuracy, per-class precision/recall and the confusion matrix (rows: true, columns: predicted).
public struct ClassificationReport: Codable, Equatable, Sendable {
    public var classNames: [String]
    public var confusion: [[Int]]
    public var loss: Double?

    public init(classNames: [String], truth: [Int], predicted: [Int], loss: Double? = nil) {
        self.classNames = classNames
        self.loss = loss
        confusion = Array(repeating: Array(repeating: 0, count: classNames.count), count: classNames.count)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
    }

    public var total: Int { confusion.joined().reduce(0, +) }
    public var accuracy: Double { Double((0..<confusion.count).reduce(0) { $0 + confusion[$1][$1] }) / Double(max(total, 1)) }
    public func precision(_ c: Int) -> Double {
        let col = confusion.reduce(0) { $0 + $1[c] }
        return col == 0 ? 0 : Double(confusion[c][c]) / Double(col)
    }
    public func recall(_ c: Int) -> Double {
        let row = confusion[c].reduce(0, +)
        return row == 0 ? 0 : Double(confusion[c][c]) / Double(row)
    }

    public func f1(_ c: Int) -> Double {
        let (p, r) = (precision(c), recall(c))
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }
    public func support(_ c: Int) -> Int { confusion[c].reduce(0, +) }

    /// The mean recall over the classes that have images (sklearn's balanced_accuracy_score):
    /// on imbalanced data, what accuracy would be if every class counted the same.
    public var balancedAccuracy: Double {
        let present = confusion.indices.filter { support($0) > 0 }
        return present.isEmpty ? .nan : present.reduce(0) { $0 + recall($1) } / Double(present.count)
    }

    /// Classes that occur in the truth or the predictions: the macro averages run over these, as
    /// sklearn's average="macro" does (an undefined precision or recall counts 0).
    private var seenClasses: [Int] {
        confusion.indices.filter { c in support(c) > 0 || confusion.contains { $0[c] > 0 } }
    }
    private func macro(_ metric: (Int) -> Double) -> Double {
        let seen = seenClasses
        return seen.isEmpty ? .nan : seen.reduce(0) { $0 + metric($1) } / Double(seen.count)
    }
    public var macroPrecision: Double { macro(precision) }
    public var macroRecall: Double { macro(recall) }
    public var macroF1: Double { macro(f1) }

    public var text: String {
        let w = max(12, (classNames.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var out = String(format: "accuracy: %.4f (%d/%d)", accuracy, (0..<confusion.count).reduce(0) { $0 + confusion[$1][$1] }, total)
        if let loss { out += String(format: "  loss: %.4f", loss) }
        out += String(format: "\nbalanced accuracy: %.4f  macro precision: %.4f  macro recall: %.4f  macro F1: %.4f",
                      balancedAccuracy, macroPrecision, macroRecall, macroF1)
        out += "\n\n" + pad("class", w) + pad("precision", 11) + pad("recall", 9) + pad("f1", 9) + pad("support", 9) + "\n"
        for (c, name) in classNames.enumerated() {
            out += pad(name, w) + pad(String(format: "%.4f", precision(c)), 11) + pad(String(format: "%.4f", recall(c)), 9)
                + pad(String(format: "%.4f", f1(c)), 9) + pad("\(support(c))", 9) + "\n"
        }
        // Row labels: the class number right-aligned, then the name left-aligned, so that numbers
        // and names each start in one column whatever the names' lengths.
        let digits = "\(max(classNames.count - 1, 0))".count, nameWidth = classNames.map(\.count).max() ?? 0
        let cell = max(7, "\(confusion.joined().max() ?? 0)".count + 2)
        out += "\nconfusion matrix (rows: true class, columns: predicted)\n" + String(repeating: " ", count: digits + 1 + nameWidth)
        out += classNames.indices.map { pad("\($0)", cell) }.joined() + "\n"
        for (c, name) in classNames.enumerated() {
            out += pad("\(c)", digits) + " " + name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + confusion[c].map { pad("\($0)", cell) }.joined() + "\n"
        }
        return out
    }
}

import Foundation

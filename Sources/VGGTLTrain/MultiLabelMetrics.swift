import Foundation

/// Correct predictions in a batch, as the history's `acc` counts them: the predicted class is
/// the true one; for a multi-label model, every label of the image is right at probability 0.5
/// (exact match: sklearn's accuracy_score on multi-label data, stricter than Keras'
/// binary_accuracy, which averages over labels and reads high when most labels are absent).
public func correctCount(logits: [Float], targets: [Float], rows: Int, multiLabel: Bool) -> Int {
    guard multiLabel else {
        return zip(predictedClasses(logits: logits, rows: rows), targets).filter { $0 == Int($1) }.count
    }
    let width = logits.count / max(rows, 1)
    return (0..<rows).filter { r in
        (0..<width).allSatisfy { j in (logits[r * width + j] >= 0) == (targets[r * width + j] >= 0.5) }
    }.count
}

/// sigmoid of every logit: a multi-label model's per-label probabilities.
public func sigmoidProbabilities(logits: [Float], rows: Int) -> [[Float]] {
    let width = logits.count / max(rows, 1)
    return (0..<rows).map { r in (0..<width).map { 1 / (1 + expf(-logits[r * width + $0])) } }
}

/// Average precision of one label (sklearn's average_precision_score): the sum over the distinct
/// scores, highest first, of (R_n - R_(n-1)) * P_n, with precision and recall of predicting
/// positive at scores >= each. nil when the label has no positive (recall is undefined).
public func averagePrecision(scores: [Float], truth: [Bool]) -> Double? {
    let positives = truth.filter { $0 }.count
    guard positives > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] > scores[$1] }
    var tp = 0, fp = 0, previousRecall = 0.0, ap = 0.0
    for (k, i) in order.enumerated() {
        if truth[i] { tp += 1 } else { fp += 1 }
        // Tied scores are one threshold: count them all before taking a point.
        if k + 1 < order.count, scores[order[k + 1]] == scores[i] { continue }
        let recall = Double(tp) / Double(positives), precision = Double(tp) / Double(tp + fp)
        ap += (recall - previousRecall) * precision
        previousRecall = recall
    }
    return ap
}

/// A multi-label model's scores on labelled images: per-label precision, recall and F1 at a
/// probability threshold, their macro averages, and the mean average precision (mAP) over the
/// labels that have positives.
public struct MultiLabelReport: Codable, Equatable, Sendable {
    public var labelNames: [String]
    public var threshold: Float
    /// Per label: true positives, false positives, false negatives, positives in the truth.
    public var truePositives: [Int], falsePositives: [Int], falseNegatives: [Int], support: [Int]
    /// Per label; nil where the label has no positive image.
    public var averagePrecisions: [Double?]
    public var images: Int
    /// Images whose every label is right at the threshold.
    public var exactMatches: Int
    public var loss: Double?

    /// `probabilities` and `targets`: one row of `labelNames.count` per image.
    public init(labelNames: [String], probabilities: [[Float]], targets: [[Float]], threshold: Float = 0.5, loss: Double? = nil) {
        precondition(probabilities.count == targets.count, "MultiLabelReport: \(probabilities.count) rows of probabilities, \(targets.count) of targets")
        let k = labelNames.count
        self.labelNames = labelNames; self.threshold = threshold; self.loss = loss
        images = probabilities.count
        truePositives = Array(repeating: 0, count: k); falsePositives = truePositives; falseNegatives = truePositives; support = truePositives
        exactMatches = 0
        for (p, t) in zip(probabilities, targets) {
            var exact = true
            for j in 0..<k {
                let predicted = p[j] >= threshold, truth = t[j] >= 0.5
                if truth { support[j] += 1 }
                if predicted && truth { truePositives[j] += 1 }
                if predicted && !truth { falsePositives[j] += 1 }
                if !predicted && truth { falseNegatives[j] += 1 }
                if predicted != truth { exact = false }
            }
            if exact { exactMatches += 1 }
        }
        averagePrecisions = (0..<k).map { j in averagePrecision(scores: probabilities.map { $0[j] }, truth: targets.map { $0[j] >= 0.5 }) }
    }

    /// sklearn's zero_division=0: an undefined precision or recall counts 0.
    public func precision(_ j: Int) -> Double {
        let predicted = truePositives[j] + falsePositives[j]
        return predicted == 0 ? 0 : Double(truePositives[j]) / Double(predicted)
    }
    public func recall(_ j: Int) -> Double { support[j] == 0 ? 0 : Double(truePositives[j]) / Double(support[j]) }
    public func f1(_ j: Int) -> Double {
        let (p, r) = (precision(j), recall(j))
        return p + r == 0 ? 0 : 2 * p * r / (p + r)
    }
    private func macro(_ metric: (Int) -> Double) -> Double {
        labelNames.isEmpty ? .nan : labelNames.indices.reduce(0) { $0 + metric($1) } / Double(labelNames.count)
    }
    public var macroPrecision: Double { macro(precision) }
    public var macroRecall: Double { macro(recall) }
    public var macroF1: Double { macro(f1) }
    /// Images with every label right (sklearn's accuracy_score on multi-label data).
    public var exactMatchRatio: Double { images == 0 ? .nan : Double(exactMatches) / Double(images) }
    /// Labels without a positive image: left out of `meanAveragePrecision`.
    public var labelsWithoutPositives: [String] { labelNames.indices.filter { averagePrecisions[$0] == nil }.map { labelNames[$0] } }
    /// The mean of the labels' average precisions; NaN when no label has a positive.
    public var meanAveragePrecision: Double {
        let present = averagePrecisions.compactMap { $0 }
        return present.isEmpty ? .nan : present.reduce(0, +) / Double(present.count)
    }

    public var text: String {
        let w = max(12, (labelNames.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var out = String(format: "mAP: %.4f  exact match: %.4f (%d/%d)", meanAveragePrecision, exactMatchRatio, exactMatches, images)
        if let loss { out += String(format: "  loss: %.4f", loss) }
        out += String(format: "\nat threshold %g: macro precision: %.4f  macro recall: %.4f  macro F1: %.4f",
                      Double(threshold), macroPrecision, macroRecall, macroF1)
        let missing = labelsWithoutPositives
        if !missing.isEmpty {
            out += "\nno positive image for \(missing.map { "'\($0)'" }.joined(separator: ", ")): left out of mAP (average precision is undefined without positives)"
        }
        out += "\n\n" + pad("label", w) + pad("precision", 11) + pad("recall", 9) + pad("f1", 9) + pad("AP", 9) + pad("support", 9) + "\n"
        for (j, name) in labelNames.enumerated() {
            out += pad(name, w) + pad(String(format: "%.4f", precision(j)), 11) + pad(String(format: "%.4f", recall(j)), 9)
                + pad(String(format: "%.4f", f1(j)), 9) + pad(averagePrecisions[j].map { String(format: "%.4f", $0) } ?? "-", 9)
                + pad("\(support[j])", 9) + "\n"
        }
        return out
    }
}

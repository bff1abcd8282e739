import Foundation
import VGGTLTensors

/// Keras' `class_weight`: a weight per class that multiplies each sample's loss (and gradient)
/// in training; validation loss stays unweighted, as in Keras. `source` says where the weights
/// came from: "balanced" (sklearn's n / (k * n_c) over the training labels) or a JSON file.
public struct ClassWeights: Codable, Equatable, Sendable {
    public var source: String
    /// One weight per class, in label order.
    public var values: [Float]

    public init(source: String, values: [Float]) { self.source = source; self.values = values }

    /// sklearn's compute_class_weight("balanced"): n / (k * n_c), so every class carries the same
    /// total weight. A class without training samples has no such weight: an error.
    public static func balanced(labels: [Int], classNames: [String]) throws -> ClassWeights {
        let counts = classCounts(labels: labels, classes: classNames.count)
        if let empty = counts.firstIndex(of: 0) {
            throw VGGTLError.classWeights(source: "balanced", reason: "class '\(classNames[empty])' has no training samples, so it has no balanced weight")
        }
        let n = Double(labels.count), k = Double(classNames.count)
        return ClassWeights(source: "balanced", values: counts.map { Float(n / (k * Double($0))) })
    }

    /// A JSON object of class name -> weight, every class named once, each weight a finite
    /// number >= 0 and not all 0.
    public static func file(_ path: String, classNames: [String]) throws -> ClassWeights {
        func fail(_ reason: String) -> VGGTLError { .classWeights(source: path, reason: reason) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read the file") }
        guard let object = try? JSONDecoder().decode([String: Double].self, from: data) else {
            throw fail("not a JSON object of class name -> weight (a number), such as {\"\(classNames.first ?? "cats")\": 1, \"\(classNames.last ?? "dogs")\": 5}")
        }
        let unknown = object.keys.filter { !classNames.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw fail("unknown class\(unknown.count == 1 ? "" : "es") \(unknown.joined(separator: ", ")); the classes are \(classNames.joined(separator: ", "))")
        }
        let missing = classNames.filter { object[$0] == nil }
        guard missing.isEmpty else { throw fail("no weight for class\(missing.count == 1 ? "" : "es") \(missing.joined(separator: ", ")); give every class a weight") }
        let values = classNames.map { Float(object[$0]!) }
        if let bad = classNames.first(where: { !(object[$0]! >= 0 && object[$0]!.isFinite) }) {
            throw fail("the weight of '\(bad)' is \(object[bad]!); weights are numbers >= 0")
        }
        guard values.contains(where: { $0 > 0 }) else { throw fail("every weight is 0; at least one class must weigh more") }
        return ClassWeights(source: path, values: values)
    }

    /// "balanced: cats 0.55, dogs 5.5".
    public func summary(classNames: [String]) -> String {
        "\(source): " + zip(classNames, values).map { "\($0) \(String(format: "%.4g", $1))" }.joined(separator: ", ")
    }
}

/// How many samples of each class 0..<classes the labels hold.
public func classCounts(labels: [Int], classes: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: classes)
    for l in labels where l >= 0 && l < classes { counts[l] += 1 }
    return counts
}

/// The largest class over the smallest (infinity when a class is empty; 1 for one class).
public func imbalanceRatio(_ counts: [Int]) -> Double {
    guard let most = counts.max(), let least = counts.min(), counts.count > 1 else { return 1 }
    return least == 0 ? .infinity : Double(most) / Double(least)
}

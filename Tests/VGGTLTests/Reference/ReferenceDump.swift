import Foundation
import XCTest
@testable import VGGTL

/// One reference state written by scripts/reference/torch_reference.py (format:
/// scripts/reference/README.md): a safetensors file with the input, labels, features, logits,
/// losses, BatchNorm batch statistics, small gradients in full and the calibrated moving
/// statistics, plus JSON metadata: the config, every model tensor (how to generate it) and a
/// sketch of every gradient. Test-only.
struct ReferenceDump {
    struct TensorSpec: Decodable {
        var name: String
        var shape: [Int]
        var kind: String          // kernel, bias, gamma, beta, moving_mean, moving_variance
        var layout: String        // keras (HWIO, (in, out)) or torch (OIHW, (out, in))
        var scale: Float?
        var offset: Float?
        var signed: Bool?
        var stored: Bool?         // the values are the dump's weights/<name>
        var layer: String?        // Keras variants: the layer it belongs to
        var layer_index: Int?     // and that layer's index in model.layers
        var keras_name: String?   // torchvision variants: vggtl's (Keras-style) name of the tensor

        /// The name vggtl's model gives this tensor (the head is vggtl's "predictions").
        var vggtlName: String {
            let n = keras_name ?? name
            return n.hasPrefix("head_dense/") ? "predictions/" + n.dropFirst("head_dense/".count) : n
        }
    }

    struct GradientSketch: Decodable {
        var n: Int
        var norm: Double
        var maxabs: Double
        var proj: [Double]
        var sample_index: [Int]
        var sample_value: [Double]
        var expected_zero: Bool?
        var zero_scale: Double?
        /// A max pool upstream of this tensor has a window whose two largest values are closer
        /// than ROUTING_SAFE float32 errors (pool_ratio): a correct float32 implementation may
        /// route that window's gradient differently, so the tensor is compared loosely.
        var routing_sensitive: Bool?
        var pool_ratio: Double?
    }

    let url: URL
    let config: [String: Any]
    /// Every tensor of the model (trunk in Keras' model.layers weight order or torchvision's
    /// state_dict order, then head_dense/kernel and head_dense/bias).
    let tensors: [TensorSpec]
    /// step ("train" or "frozen") -> tensor name -> sketch of the float64 gradient.
    let sketches: [String: [String: GradientSketch]]
    private let arrays: [String: (shape: [Int], values: [Float])]

    init(_ url: URL) throws {
        self.url = url
        let set = try Safetensors.read(url)
        guard set.metadata["format"] == "vggtl-reference-v1" else {
            throw VGGTLError.unsupportedFile(file: url.path, reason: "not a vggtl-reference-v1 dump (regenerate it with scripts/reference/torch_reference.py)")
        }
        func json(_ key: String) throws -> Data {
            guard let s = set.metadata[key] else {
                throw VGGTLError.corruptFile(file: url.path, format: "reference dump", reason: "no \(key) in the metadata")
            }
            return Data(s.utf8)
        }
        config = try JSONSerialization.jsonObject(with: json("config")) as? [String: Any] ?? [:]
        tensors = try JSONDecoder().decode([TensorSpec].self, from: json("tensors"))
        sketches = try JSONDecoder().decode([String: [String: GradientSketch]].self, from: json("sketches"))
        var a: [String: (shape: [Int], values: [Float])] = [:]
        for t in set.tensors { a[t.name] = (t.shape, t.values) }
        arrays = a
    }

    var variant: String { config["variant"] as? String ?? "?" }
    var globalSeed: UInt64 { UInt64(config["global_seed"] as? String ?? "0") ?? 0 }
    /// [batch, height, width, 3]
    var inputShape: [Int] { config["input_shape_nhwc"] as? [Int] ?? [] }
    var classes: Int { config["classes"] as? Int ?? 0 }

    /// A stored array: "input", "labels", "inference/features", "train/logits", "frozen/loss",
    /// "train/grad/<name>", "train/bn_mean/<layer>", "weights/<name>", ...
    func array(_ name: String) throws -> (shape: [Int], values: [Float]) {
        guard let a = arrays[name] else {
            throw VGGTLError.corruptFile(file: url.path, format: "reference dump", reason: "no array \(name)")
        }
        return a
    }

    func has(_ name: String) -> Bool { arrays[name] != nil }
    var arrayNames: [String] { arrays.keys.sorted() }

    /// The values the reference used for one model tensor, in its layout (row-major in `shape`).
    func weight(_ t: TensorSpec) throws -> [Float] {
        if t.stored == true { return try array("weights/\(t.name)").values }
        guard let scale = t.scale else {
            throw VGGTLError.corruptFile(file: url.path, format: "reference dump", reason: "tensor \(t.name) has neither a scale nor stored values")
        }
        return ReferenceWeights.tensor(name: t.name, shape: t.shape, scale: scale, offset: t.offset ?? 0,
                                       signed: t.signed ?? false, globalSeed: globalSeed)
    }

    /// The trainable tensors of a step, in the dump's order.
    func trainable(step: String) -> [TensorSpec] {
        let kinds: Set<String> = step == "train" ? ["kernel", "bias", "gamma", "beta"] : ["kernel", "bias"]
        return tensors.filter { kinds.contains($0.kind) }
    }
}

/// Compares our tensors with a dump, every tensor, and reports them all in one failure message
/// (llm.c's habit: one dumped state, one test, every tensor compared).
///
/// Measures (each relative to the reference's own size):
/// - full arrays (features, logits, loss, small gradients, BN statistics):
///   max |ours - ref| / max |ref|;
/// - sketched gradients: the largest of |norm - norm_ref| / norm_ref, max_k |proj_k - proj_k,ref|
///   / norm_ref (a relative L2 error seen through K random directions), max over the sampled
///   elements |ours - ref| / maxabs_ref and |maxabs - maxabs_ref| / maxabs_ref;
/// - gradients that are 0 in exact arithmetic (expected_zero): ||ours|| / zero_scale (the median
///   gradient norm of the step);
/// - routing-sensitive gradients (a near-tie max pool upstream): the relative L2 part only (norm
///   and projections), against `sensitiveTolerance`.
struct ReferenceComparator {
    struct Row { var name: String; var error: Double; var tolerance: Double; var measure: String }
    var rows: [Row] = []
    let dump: ReferenceDump

    init(_ dump: ReferenceDump) { self.dump = dump }

    static func maxRelative(_ ours: [Float], _ ref: [Float]) -> Double {
        guard ours.count == ref.count, !ref.isEmpty else { return .infinity }
        var num = 0.0, den = 1e-300
        for i in ref.indices {
            let d = Double(ours[i]) - Double(ref[i])
            if !d.isFinite { return .infinity }
            num = max(num, abs(d)); den = max(den, abs(Double(ref[i])))
        }
        return num / den
    }

    /// A stored array (features, logits, loss, BN statistics, a small gradient) against ours.
    mutating func compare(_ arrayName: String, ours: [Float], shape: [Int]? = nil, tolerance: Double) throws {
        let ref = try dump.array(arrayName)
        if let shape, shape != ref.shape {
            rows.append(Row(name: arrayName, error: .infinity, tolerance: tolerance, measure: "shape \(shape) vs \(ref.shape)"))
            return
        }
        rows.append(Row(name: arrayName, error: Self.maxRelative(ours, ref.values), tolerance: tolerance, measure: "max-rel"))
    }

    /// One gradient (in Keras layout, row-major) against the dump's sketch, and against the full
    /// array when the dump has it.
    mutating func compareGradient(step: String, name: String, ours: [Float], tolerance: Double,
                                  sensitiveTolerance: Double = 5e-2) {
        let label = "\(step)/grad/\(name)"
        guard let s = dump.sketches[step]?[name] else {
            rows.append(Row(name: label, error: .infinity, tolerance: tolerance, measure: "not in the dump"))
            return
        }
        guard ours.count == s.n, !ours.contains(where: { !$0.isFinite }) else {
            rows.append(Row(name: label, error: .infinity, tolerance: tolerance, measure: "\(ours.count) values (want \(s.n)) or non-finite"))
            return
        }
        // Sketch streams do not depend on the dump's global seed (that one only changes the weights).
        let mine = ReferenceWeights.sketch(name: name, values: ours, k: s.proj.count, samples: s.sample_index.count)
        if s.expected_zero == true, let scale = s.zero_scale {
            rows.append(Row(name: label, error: mine.norm / scale, tolerance: tolerance, measure: "zero: norm/median"))
            return
        }
        var e = abs(mine.norm - s.norm) / s.norm
        for (a, b) in zip(mine.proj, s.proj) { e = max(e, abs(a - b) / s.norm) }
        if s.routing_sensitive == true {
            rows.append(Row(name: label, error: e, tolerance: sensitiveTolerance,
                            measure: String(format: "routing-sensitive (pool ratio %.2g): rel-L2", s.pool_ratio ?? 0)))
            return
        }
        for (i, b) in zip(mine.sampleIndex, s.sample_value) { e = max(e, abs(Double(ours[i]) - b) / s.maxabs) }
        e = max(e, abs(mine.maxabs - s.maxabs) / s.maxabs)
        var measure = "sketch"
        if let full = try? dump.array(label) {
            e = max(e, Self.maxRelative(ours, full.values))
            measure = "sketch+max-rel"
        }
        rows.append(Row(name: label, error: e, tolerance: tolerance, measure: measure))
    }

    var failures: [Row] { rows.filter { !($0.error <= $0.tolerance) } }

    /// The largest error of each kind of comparison: forward arrays, strict gradients of each
    /// step, routing-sensitive gradients, expected zeros.
    var worstByKind: [(kind: String, error: Double, count: Int)] {
        func kind(_ r: Row) -> String {
            if r.measure.hasPrefix("zero") { return "expected zeros" }
            if r.measure.hasPrefix("routing") { return "routing-sensitive gradients" }
            if r.name.hasPrefix("train/grad/") { return "train gradients" }
            if r.name.hasPrefix("frozen/grad/") { return "frozen gradients" }
            return "forward"
        }
        let groups = Dictionary(grouping: rows, by: kind)
        return groups.keys.sorted().map { k in (k, groups[k]!.map(\.error).max()!, groups[k]!.count) }
    }

    /// The worst rows, for the failure message and the test log.
    func summary(limit: Int = 12) -> String {
        let worst = rows.sorted { $0.error > $1.error }.prefix(limit)
        let kinds = worstByKind.map { String(format: "%@ %.2e (%d)", $0.kind as NSString, $0.error, $0.count) }.joined(separator: ", ")
        return "\(dump.variant): \(rows.count) tensors compared, \(failures.count) over tolerance; worst by kind: \(kinds); worst:\n" +
            worst.map { String(format: "  %-60@ %.3e (tol %.2g, %@)", $0.name as NSString, $0.error, $0.tolerance, $0.measure as NSString) }
                .joined(separator: "\n")
    }

    func assertAll(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(rows.isEmpty, "nothing was compared", file: file, line: line)
        XCTAssertTrue(failures.isEmpty, summary(), file: file, line: line)
    }
}

/// The committed dumps.
enum ReferenceDumps {
    static let variants = ["keras_resnet50", "torchvision_resnet50", "keras_inceptionv3", "torchvision_inceptionv3"]
    static func url(_ variant: String) -> URL {
        referenceDirectory.appendingPathComponent("dumps/\(variant).safetensors")
    }
}

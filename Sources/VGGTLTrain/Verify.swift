import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLData
import VGGTLIO
import VGGTLModels

/// `--verify`: the first batch through the model on its device and through a CPU twin (same
/// weights, same seed and dropout masks): logits, loss and every trainable gradient are
/// compared tensor by tensor.
///
/// Two correct float32 implementations do not agree exactly: they sum in other orders, and the
/// differences grow through the layers, most where the true value is nearly zero (a convolution
/// bias in front of BatchNorm has a gradient of zero up to rounding). So the check asks, per
/// tensor, whether the device's difference from the CPU is of the size float32 rounding makes:
///
/// - error: the L2 norm of (device - CPU) over the tensor;
/// - rounding: how far the CPU's own result moves when its input, its weights, every layer's
///   output and the loss gradient are changed by a few float32 roundings (relative
///   `perturbation`, random signs; the larger of `samples` draws), plus `perturbation` times the
///   result itself (its own last rounding). A reordered sum is such a change; the network's
///   conditioning (ReLU and max-pool decisions, BatchNorm over few values, cancellation in long
///   sums) amplifies it as it amplifies the device's;
/// - floor: `floorFraction` of the tensor's size were every element as large as the model's
///   root-mean-square gradient (for logits and loss: of their own size), so a gradient that is
///   zero in exact arithmetic does not need a relative match;
/// - tolerance = `safetyFactor` x rounding + floor.
///
/// Calibration (Tests/VGGTLTests/VerifyTests.swift): over VGG16 and VGG16-BN, every --unfreeze
/// choice, dropout on and off, batch 1 and 16, PoCL agrees with the CPU well inside the
/// tolerance, and so do the CPU's own two convolution algorithms (Winograd vs im2col), while a
/// bias gradient scaled by 1.05 on the device is reported.
public enum Verification {
    /// Relative size of the input and weight changes that stand for float32 rounding: 2^-18,
    /// 64 units of float32 roundoff, the order of the rounding a reordered sum of 4,608 products
    /// (block5's 3x3x512) accumulates.
    public static let perturbation: Float = 1.0 / 262_144
    /// How many times the rounding estimate a difference may reach.
    public static let safetyFactor = 10.0
    /// The floor, as a fraction of the model's RMS gradient (or the tensor's own RMS for logits
    /// and loss): 1e-4, the project's float32 GEMM tolerance.
    public static let floorFraction = 1e-4

    /// One compared tensor. Norms are L2 over the tensor; `relative*` divide by the CPU's norm.
    public struct TensorCheck: Sendable {
        public var name: String
        public var count: Int
        public var cpuNorm: Double
        public var error: Double
        public var rounding: Double
        public var floor: Double
        public var tolerance: Double { Verification.safetyFactor * rounding + floor }
        public var ok: Bool { error <= tolerance }
        /// error / tolerance: above 1 is a disagreement.
        public var score: Double { error == 0 ? 0 : tolerance > 0 ? error / tolerance : .infinity }
        func relative(_ v: Double) -> Double { cpuNorm > 0 ? v / cpuNorm : v }
        public var relativeError: Double { relative(error) }
    }

    public struct Report: Sendable {
        public var device: String
        public var checks: [TensorCheck]
        public var agrees: Bool { checks.allSatisfy(\.ok) }
        /// The tensor closest to (or furthest past) its tolerance.
        public var worst: TensorCheck { checks.max { $0.score < $1.score }! }
        public var failures: [TensorCheck] { checks.filter { !$0.ok } }

        /// One line for the log.
        public var summary: String {
            let w = worst
            return String(format: "verify: %@ vs cpu on the first batch, %d tensors: %@; %@: %@ (relative L2 error %.2e, tolerance %.2e)",
                          device, checks.count, agrees ? "agree within float32 rounding" : "\(failures.count) DISAGREE",
                          agrees ? "closest to its tolerance" : "worst", w.name, w.relativeError, w.relative(w.tolerance))
        }

        /// The message when they disagree: the numbers, and what the user can do.
        public var disagreement: String { failure.description }

        /// The error when they disagree: the numbers of the worst three tensors.
        public var failure: VGGTLError {
            let list = failures.sorted { $0.score > $1.score }.prefix(3).map {
                String(format: "%@ relative L2 error %.2e vs tolerance %.2e (float32 rounding moves it by %.2e)",
                       $0.name, $0.relativeError, $0.relative($0.tolerance), $0.relative($0.rounding))
            }.joined(separator: "; ")
            return .verificationFailed(device: device, failing: failures.count, checked: checks.count, worst: list)
        }

        /// Every tensor: size, CPU norm, relative error, rounding estimate and tolerance.
        public var table: String {
            let header = ["tensor", "elements", "|cpu|", "rel. error", "rounding", "tolerance", ""]
            let rows = checks.map { c in
                [c.name, "\(c.count)", String(format: "%.3e", c.cpuNorm), String(format: "%.2e", c.relativeError),
                 String(format: "%.2e", c.relative(c.rounding)), String(format: "%.2e", c.relative(c.tolerance)), c.ok ? "ok" : "DISAGREE"]
            }
            let widths = (0..<header.count).map { i in ([header] + rows).map { $0[i].count }.max()! }
            func line(_ r: [String]) -> String {
                r.enumerated().map { i, v in i == 0 ? v.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                                   : String(repeating: " ", count: widths[i] - v.count) + v }.joined(separator: "  ")
            }
            return ([line(header), String(repeating: "-", count: widths.reduce(2 * (widths.count - 1), +))] + rows.map(line))
                .joined(separator: "\n") + "\n(relative: L2 norms divided by |cpu|; tolerance = \(Int(safetyFactor)) x rounding + floor)"
        }
    }

    /// Runs the first batch on `model`'s device and on the CPU and compares. The model is left
    /// as it was (weights, BatchNorm statistics, dropout counters). `cpu` opens the reference
    /// device (Train names no concrete device: the caller hands in the CPU).
    public static func firstBatch(_ model: Model, batch: Batch, samples: Int = 2, cpu: () throws -> Device) throws -> Report {
        let snapshot = weightSet(of: model.layers)
        let results = try pass(model, x: batch.x, batch: batch)
        try loadWeights(snapshot, into: model.layers)
        let twin = try Model(model.config, on: try cpu(), seed: model.seed)
        for (a, b) in zip(model.layers, twin.layers) {
            b.trainable = a.trainable
            if let da = a as? Dropout, let db = b as? Dropout { db.step = da.step }
        }
        return try check(results, from: model.device.name, against: twin, weights: snapshot, batch: batch, samples: samples)
    }

    /// Compares results of a pass against `reference` (a CPU model with the same layers,
    /// trainable flags and dropout counters) run on the same batch with `weights`, and the
    /// rounding estimate from `samples` perturbed runs of it.
    static func check(_ results: [(name: String, values: [Float])], from name: String, against reference: Model,
                      weights snapshot: WeightSet, batch: Batch, samples: Int) throws -> Report {
        try loadWeights(snapshot, into: reference.layers)
        let cpu = try pass(reference, x: batch.x, batch: batch)
        var rounding = [Double](repeating: 0, count: cpu.count)
        for s in 0..<samples {
            var rng = SeededGenerator(seed: 0x5645_5249_4659 &+ UInt64(s))
            var perturbed = snapshot
            for i in perturbed.tensors.indices { perturb(&perturbed.tensors[i].values, rng: &rng) }
            try loadWeights(perturbed, into: reference.layers)
            var x = batch.x
            perturb(&x, rng: &rng)
            let moved = try pass(reference, x: x, batch: batch, perturbing: &rng)
            for (k, (a, b)) in zip(moved, cpu).enumerated() { rounding[k] = max(rounding[k], distance(a.values, b.values)) }
        }
        try loadWeights(snapshot, into: reference.layers)
        // The result's own last rounding, which no upstream change shows where the result is
        // insensitive to its inputs (softmax of near-zero logits).
        for (k, r) in cpu.enumerated() { rounding[k] += Double(perturbation) * squaredNorm(r.values).squareRoot() }
        return compare(device: name, device: results, cpu: cpu, rounding: rounding)
    }

    /// The per-tensor checks from the device's and the CPU's results and the rounding estimates.
    static func compare(device name: String, device: [(name: String, values: [Float])], cpu: [(name: String, values: [Float])],
                        rounding: [Double]) -> Report {
        let gradients = cpu.filter { $0.name.hasPrefix("d ") }
        let count = gradients.reduce(0) { $0 + $1.values.count }
        let rmsGradient = count == 0 ? 0 : (gradients.reduce(0.0) { $0 + squaredNorm($1.values) } / Double(count)).squareRoot()
        var checks: [TensorCheck] = []
        for (k, (d, c)) in zip(device, cpu).enumerated() {
            let n = c.values.count
            let norm = squaredNorm(c.values).squareRoot()
            let rms = c.name.hasPrefix("d ") ? rmsGradient : norm / Double(max(n, 1)).squareRoot()
            let error = d.values.contains { !$0.isFinite } ? .infinity : distance(d.values, c.values)
            checks.append(TensorCheck(name: c.name, count: n, cpuNorm: norm, error: error, rounding: rounding[k],
                                      floor: floorFraction * rms * Double(n).squareRoot()))
        }
        return Report(device: name, checks: checks)
    }

    /// Forward, loss and backward of one batch in training mode; the model's dropout counters
    /// are put back so that every pass draws the same masks. `perturbing`: every layer's output
    /// and the loss gradient are changed by `perturbation` too, element by element, as their own
    /// rounding would change them (uncorrelated, unlike the effect of changed weights, which
    /// BatchNorm largely normalises away).
    static func pass(_ m: Model, x values: [Float], batch: Batch) throws -> [(name: String, values: [Float])] {
        var none: SeededGenerator? = nil
        return try pass(m, x: values, batch: batch, perturbing: &none)
    }

    static func pass(_ m: Model, x values: [Float], batch: Batch, perturbing rng: inout SeededGenerator) throws -> [(name: String, values: [Float])] {
        var some: SeededGenerator? = rng
        defer { rng = some! }
        return try pass(m, x: values, batch: batch, perturbing: &some)
    }

    static func pass(_ m: Model, x values: [Float], batch: Batch, perturbing rng: inout SeededGenerator?) throws -> [(name: String, values: [Float])] {
        let d = m.device
        let x = try Tensor(values, shape: [batch.count] + m.config.inputShape, on: d)
        let y = try Tensor(batch.labels, shape: m.config.targetShape(rows: batch.count), on: d)
        let steps = m.dropoutSteps
        defer { for layer in m.layers { if let dr = layer as? Dropout { dr.step = steps[dr.name] ?? 0 } } }
        let logits: Tensor
        if var r = rng {
            // Each layer's new output changed as its own rounding would change it (views and
            // in-place results are left: they are their input, already changed).
            m.network.forwardObserver = { y, sharesInput in if !sharesInput { perturbInPlace(y, rng: &r) } }
            defer { m.network.forwardObserver = nil }
            logits = try m.network.forward(x, .training)
            rng = r
        } else {
            logits = try m.network.forward(x, .training)
        }
        let (l, g) = try Loss(m.config.loss).compute(logits: logits, labels: y)
        if rng != nil { perturbInPlace(g, rng: &rng!) }
        try m.network.backward(g)
        return [("logits", logits.toArray()), ("loss", [l])]
            + m.network.trainableParameters.compactMap { p in p.grad.map { ("d " + p.name, $0.toArray()) } }
    }

    /// v *= 1 + perturbation * r, r uniform in [-1, 1). (Buffer loops: VGG16 has 15 million weights.)
    static func perturb(_ v: inout [Float], rng: inout SeededGenerator) {
        v.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] *= 1 + perturbation * rng.uniform(-1, 1) }
        }
    }

    /// `perturb` on a tensor's values where they are stored (channel slices are left as they are).
    static func perturbInPlace(_ t: Tensor, rng: inout SeededGenerator) {
        guard t.isDense else { return }
        var v = t.toArray()
        perturb(&v, rng: &rng)
        v.withUnsafeBufferPointer { t.device.write($0, to: t.buffer, offset: t.offset) }
    }

    static func squaredNorm(_ v: [Float]) -> Double {
        v.withUnsafeBufferPointer { p in
            var s = 0.0
            for x in p { s += Double(x) * Double(x) }
            return s
        }
    }

    static func distance(_ a: [Float], _ b: [Float]) -> Double {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var s = 0.0
                for i in 0..<min(pa.count, pb.count) { let e = Double(pa[i]) - Double(pb[i]); s += e * e }
                return s.squareRoot()
            }
        }
    }
}

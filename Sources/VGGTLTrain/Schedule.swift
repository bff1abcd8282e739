import Foundation
import VGGTLTensors

/// Learning-rate schedules as plain functions of the epoch (0-based), as mlx-swift keeps them.
public enum LearningRateSchedule: Equatable, Codable, Sendable {
    case constant
    /// Multiply by `factor` every `every` epochs.
    case step(every: Int, factor: Float)
    /// Cosine decay from the base rate to `floor` times it over `epochs`.
    case cosine(epochs: Int, floor: Float)

    public func rate(base: Float, epoch: Int) -> Float {
        switch self {
        case .constant: return base
        case let .step(every, factor): return base * powf(factor, Float(epoch / max(every, 1)))
        case let .cosine(epochs, floor):
            let t = min(Float(epoch) / Float(max(epochs, 1)), 1)
            return base * (floor + (1 - floor) * 0.5 * (1 + cosf(.pi * t)))
        }
    }

    /// The schedule of a stage of `epochs` epochs: a cosine decays over them, the others do not
    /// depend on them.
    public func over(epochs: Int) -> LearningRateSchedule {
        if case .cosine(_, let floor) = self { return .cosine(epochs: epochs, floor: floor) }
        return self
    }

    /// `constant`, `step:EVERY:FACTOR` (e.g. step:10:0.1), `cosine` or `cosine:FLOOR`.
    public init(parsing text: String, epochs: Int) throws {
        let parts = text.lowercased().split(separator: ":").map(String.init)
        let bad = VGGTLError.invalidSetting(.schedule, value: text, expected: "constant, step:EVERY:FACTOR (e.g. step:10:0.1) or cosine[:FLOOR]")
        switch (parts.first, parts.count) {
        case ("constant", 1): self = .constant
        case ("step", 3):
            guard let every = Int(parts[1]), every > 0, let f = Float(parts[2]), f > 0 else { throw bad }
            self = .step(every: every, factor: f)
        case ("cosine", 1): self = .cosine(epochs: epochs, floor: 0)
        case ("cosine", 2):
            guard let floor = Float(parts[1]), (0...1).contains(floor) else { throw bad }
            self = .cosine(epochs: epochs, floor: floor)
        default: throw bad
        }
    }
}

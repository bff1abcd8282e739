import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLTrain

/// `--sampler`: how a training epoch visits the samples.
enum SamplerChoice: String, ExpressibleByArgument, CaseIterable {
    /// Every sample once per epoch, shuffled (Keras' shuffle=True).
    case shuffle
    /// Classes drawn equally often, each epoch as many draws as samples.
    case balanced
}

/// `--class-weight` and `--sampler`: training on imbalanced classes.
struct BalanceOptions: ParsableArguments {
    @Option(help: "Weight the training loss per class, as Keras' class_weight: balanced (n / (classes * n_class)) or a JSON file of class name -> weight. (default: none)")
    var classWeight: String?
    @Option(help: "shuffle: every sample once per epoch | balanced: each batch drawn with equal class probability (seeded, resumable).")
    var sampler: SamplerChoice = .shuffle

    var balancedSampler: Bool { sampler == .balanced }

    /// The class weights asked for, from the training labels; nil without --class-weight.
    func classWeights(labels: [Int], classNames: [String]) throws -> ClassWeights? {
        guard let classWeight else { return nil }
        return classWeight == "balanced" ? try .balanced(labels: labels, classNames: classNames)
            : try .file(classWeight, classNames: classNames)
    }
}

/// The warning for data whose classes are more than 10x imbalanced: accuracy there mostly counts
/// the large class. nil when balanced enough. `training`: said before training (else by evaluate).
func imbalanceWarning(labels: [Int], classNames: [String], training: Bool) -> String? {
    let counts = classCounts(labels: labels, classes: classNames.count)
    let ratio = imbalanceRatio(counts)
    guard ratio > 10 else { return nil }
    let (most, least) = (counts.indices.max { counts[$0] < counts[$1] }!, counts.indices.min { counts[$0] < counts[$1] }!)
    let size = ratio.isFinite ? String(format: "%.0fx", ratio) : "infinitely"
    return "the classes are \(size) imbalanced (\(classNames[most]): \(counts[most]), \(classNames[least]): \(counts[least])); "
        + (training ? "consider --class-weight balanced or --sampler balanced"
                    : "the model was trained without --class-weight or --sampler; balanced accuracy and macro F1 say more than accuracy here")
}

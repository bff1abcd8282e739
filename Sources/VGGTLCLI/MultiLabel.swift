import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLData
import VGGTLModels
import VGGTLTrain

/// `--labels FILE`: several labels per image, from a CSV beside the --data folder.
struct LabelsOptions: ParsableArguments {
    @Option(help: "Multi-label: a CSV with a header line, then PATH,LABEL|LABEL... per image (PATH relative to --data; images it does not list are skipped); the model gets one sigmoid unit per label and binary cross-entropy. (default: class folders, one class per image)")
    var labels: String?

}

/// `--val-labels FILE`: the labels of --val's images, for a multi-label run validated on a folder.
struct ValidationLabelsOptions: ParsableArguments {
    @Option(help: "With --labels and --val: the CSV listing --val's images and their labels (same format). (default: none)")
    var valLabels: String?
}

/// A --data folder with a --labels file; the errors name both flags.
func multiLabelSource(data: String, labels: String, flag: String, labelsFlag: String) throws -> MultiLabelSource {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue else {
        throw VGGTLError.badFlag(flag: flag, value: data, expected: "a folder of images (with \(labelsFlag): the folder its paths are relative to)")
    }
    let s = try MultiLabelSource(directory: URL(fileURLWithPath: data), labels: URL(fileURLWithPath: labels))
    for w in s.warnings { stderr("warning: \(w)") }
    return s
}

/// "found 40 images with 3 labels: red (12), striped (20), round (9)".
func multiLabelSummary(_ s: MultiLabelSource) -> String {
    let counts = s.labelCounts
    return "found \(s.count) images with \(s.classNames.count) label\(s.classNames.count == 1 ? "" : "s"): "
        + s.classNames.enumerated().map { "\($1) (\(counts[$0]))" }.joined(separator: ", ")
}

/// Flags that count classes per image make no sense when an image has several labels: refused.
func checkMultiLabelFlags(_ balance: BalanceOptions) throws {
    if let w = balance.classWeight {
        throw VGGTLError.invalidArgument("--class-weight \(w) weighs one class per image; with --labels an image has several labels, so it does not apply (leave it out)")
    }
    if balance.balancedSampler {
        throw VGGTLError.invalidArgument("--sampler balanced draws one class per image equally often; with --labels an image has several labels, so it does not apply (use --sampler shuffle)")
    }
}

/// `--threshold`: a probability in (0, 1).
func checkThreshold(_ t: Float?) throws {
    if let t, !(t > 0 && t < 1) {
        throw VGGTLError.badFlag(flag: "--threshold", value: "\(t)", expected: "a probability between 0 and 1 (exclusive), such as 0.5")
    }
}

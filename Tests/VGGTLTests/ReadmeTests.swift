import XCTest
// README.md, "Use it from Swift": the code between these markers is the README's, character
// for character (testReadmeShowsThisCode keeps them equal).
// README code begins
import Foundation
import VGGTL

/// Fine-tunes a backbone of the registry on class folders (one subfolder per class, as Keras'
/// flow_from_directory reads them), starting from `weights` (a Keras .h5 or safetensors file;
/// nil: random), and returns the history. The run folder gets last.json and best.json
/// checkpoints, history.csv and curves.svg; a session with `resume` set continues it.
func fineTune(images: URL, validation: URL?, runFolder: URL, backbone name: String = "vgg16",
              weights: URL? = nil, epochs: Int = 5) throws -> History {
    guard let backbone = Backbones.all.first(where: { $0.trunk.rawValue == name }) else {
        throw VGGTLError.invalidArgument("no backbone \(name); the registry has \(Backbones.names)")
    }
    let device = try DeviceChoice.cpu.open()  // or .auto: a GPU if there is one
    let train = try ClassFolderSource(directory: images)
    let side = max(backbone.minimumSize, 32)
    let input = InputSpec(height: side, width: side, preprocessing: backbone.defaultPreprocessing)
    let model = ModelConfig(trunk: backbone.trunk, inputShape: [side, side, 3], headPooling: backbone.defaultPooling,
                            classes: train.classNames.count)
    var config = TrainingSession.Configuration(model: model, classNames: train.classNames, input: input, runFolder: runFolder,
                                               optimizer: try OptimizerSpec(kind: .sgd, learningRate: 1e-4, momentum: 0.9))
    config.unfreeze = backbone.defaultUnfreeze  // VGG16: block5 and the head train
    (config.epochs, config.batch) = (epochs, 8)
    if let weights {
        config.weights = .init(name: weights.path) { try WeightFile.load(weights) }
    }
    let batches = BatchLoader(source: train, batchSize: config.batch, input: input, augmentation: Augmentation.presets["keras"],
                              shuffle: true, seed: config.seed)
    let checks = try validation.map {
        BatchLoader(source: try ClassFolderSource(directory: $0), batchSize: config.batch, input: input, shuffle: false, seed: config.seed)
    }
    let session = TrainingSession(config, device: device)
    return try session.run(train: batches, validation: checks).trainer.history
}
// README code ends

/// The README's "Use it from Swift" example compiles (it is this file's code) and runs.
final class ReadmeTests: BinaryTestCase {
    static let begin = "// README code begins\n", end = "\n// README code ends"

    func testReadmeShowsThisCode() throws {
        let here = try String(contentsOfFile: #filePath, encoding: .utf8)
        let readmeURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let readme = try String(contentsOf: readmeURL, encoding: .utf8)
        let mine = try XCTUnwrap(here.components(separatedBy: Self.begin).dropFirst().first?.components(separatedBy: Self.end).first)
        let section = try XCTUnwrap(readme.components(separatedBy: "## Use it from Swift\n").dropFirst().first)
        let block = try XCTUnwrap(section.components(separatedBy: "```swift\n").dropFirst().first?.components(separatedBy: "\n```").first)
        XCTAssertEqual(block, mine, "README.md's Swift example and Tests/VGGTLTests/ReadmeTests.swift differ")
    }

    func testReadmeExampleFineTunesOnClassFolders() throws {
        let images = try writeImages("train", perClass: 4), validation = try writeImages("val", perClass: 2)
        let run = url("run")
        let history = try fineTune(images: images, validation: validation, runFolder: run, epochs: 1)
        XCTAssertEqual(history.records.count, 1)
        XCTAssertNotNil(history.records[0].valLoss)
        for file in ["last.json", "best.json", "history.csv", "curves.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), file)
        }
        let info = try Checkpoint.load(run.appendingPathComponent("last.json"))
        XCTAssertEqual(info.unfreeze, "block5")
        XCTAssertEqual(info.classNames, ["cats", "dogs"])
        // A second run into the same folder is refused: it would overwrite the first.
        XCTAssertThrowsError(try fineTune(images: images, validation: validation, runFolder: run, epochs: 1)) { e in
            XCTAssertEqual(e as? VGGTLError, .runExists(folder: run.path))
        }
    }
}

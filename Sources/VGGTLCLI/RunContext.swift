import Foundation
import VGGTLTensors
import VGGTLTrain
import VGGTLDistributed

/// What a caller of `runVGGTL` can put between the commands and the engine. `vggtl` passes
/// none; the test harness `vggtl-faults` (Tests/FaultHarness) puts faults into real runs with
/// them: a failing or miscomputing device, signals and crashes at chosen batches and
/// checkpoint stages, an MPI rank that dies or hangs.
public struct Seams {
    /// Wraps the device each command opens for its work (not the CPU references of --verify).
    public var wrapDevice: (Device) -> Device
    /// Given to the trainer of every training run (train, finetune, train-top), in this order.
    public var trainingCallbacks: [TrainingCallback]

    public init(wrapDevice: @escaping (Device) -> Device = { $0 }, trainingCallbacks: [TrainingCallback] = []) {
        self.wrapDevice = wrapDevice
        self.trainingCallbacks = trainingCallbacks
    }
}

/// One run of the CLI: the environment it was started with, the knobs read from it, the seams
/// and the MPI launch. `runVGGTL` sets it before the command is parsed; commands and their
/// helpers read `RunContext.current`.
struct RunContext {
    var environment: [String: String]
    var knobs: Knobs
    var seams: Seams
    /// This process's place in an mpirun job of several ranks; nil: a single process.
    var launch: MPILaunch?

    init(environment: [String: String], seams: Seams) {
        self.environment = environment
        knobs = Knobs(environment: environment)
        self.seams = seams
        launch = MPILaunch.fromEnvironment(environment).flatMap { $0.size > 1 ? $0 : nil }
    }

    /// Safe although static and mutable: `runVGGTL` writes it once, first, on the main thread,
    /// before any command runs or any other thread starts; afterwards it is only read.
    nonisolated(unsafe) private(set) static var current = RunContext(environment: [:], seams: Seams())

    /// Called once, by `runVGGTL`.
    static func begin(_ context: RunContext) { current = context }
}

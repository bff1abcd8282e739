import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends

/// Options every subcommand takes; they may also stand before the subcommand
/// (`vggtl --device opencl finetune ...`), see `hoistGlobalOptions`.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Where to compute.")
    var device = DeviceChoice.auto
    @Option(help: "Random seed for initialisation, shuffling, augmentation and dropout.")
    var seed: UInt64 = 1
    @Option(help: "CPU threads (default: all cores; under mpirun, the cores split between a node's ranks).")
    var threads: Int?
    @Option(help: "Under mpirun: seconds a rank waits for the others in one step before it ends the job, naming the rank that died or hangs.")
    var mpiTimeout: Double = 300

    func validate() throws {
        if let threads, threads < 1 { throw VGGTLError.badFlag(flag: "--threads", value: "\(threads)", expected: "a positive number") }
        guard mpiTimeout > 0, mpiTimeout.isFinite else { throw VGGTLError.badFlag(flag: "--mpi-timeout", value: "\(mpiTimeout)", expected: "a positive number of seconds") }
    }
}

struct VGGTLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vggtl",
        abstract: "VGG16, ResNet50 and InceptionV3 transfer learning and fine-tuning on CPUs (OpenBLAS) and GPUs (OpenCL).",
        version: "vggtl \(VGGTLVersion.current)",
        subcommands: [Devices.self, Summary.self, Extract.self, TrainTop.self, Finetune.self, LRFind.self, TrainCommand.self, Evaluate.self, Predict.self, Demo.self, Compare.self, Bench.self, Weights.self])
}

/// Moves global options given before the subcommand to after it, where ArgumentParser reads them.
func hoistGlobalOptions(_ args: [String]) -> [String] {
    let withValue: Set<String> = ["--device", "--seed", "--threads", "--mpi-timeout"]
    var globals: [String] = [], rest = args[...]
    while let first = rest.first, first.hasPrefix("--") {
        let name = String(first.split(separator: "=", maxSplits: 1)[0])
        guard withValue.contains(name) else { break }
        globals.append(first); rest = rest.dropFirst()
        if !first.contains("="), let value = rest.first { globals.append(value); rest = rest.dropFirst() }
    }
    guard let sub = rest.first else { return globals }
    return [sub] + globals + rest.dropFirst()
}

/// A bare `--augment` (last, or followed by another option) means `--augment keras`, as it did
/// before presets existed.
func expandBareAugment(_ args: [String]) -> [String] {
    var out: [String] = []
    for (i, a) in args.enumerated() {
        out.append(a)
        if a == "--augment", i + 1 == args.count || args[i + 1].hasPrefix("-") { out.append("keras") }
    }
    return out
}

/// `--batch -1` means `--batch=-1`: ArgumentParser reads a value that starts with "-" as another
/// option and says the value is missing; joined, the value reaches the flag's own check, which
/// says what the flag takes.
func joinNegativeValues(_ args: [String]) -> [String] {
    var out: [String] = [], i = 0
    while i < args.count {
        let a = args[i]
        if a.hasPrefix("--"), a != "--", !a.contains("="), i + 1 < args.count, isNegativeNumber(args[i + 1]) {
            out.append(a + "=" + args[i + 1]); i += 2
        } else {
            out.append(a); i += 1
        }
    }
    return out
}

func isNegativeNumber(_ s: String) -> Bool {
    s.count > 1 && s.hasPrefix("-") && Double(s) != nil
}

/// The command a command line asks for, as `vggtl` reads it: global options may come first,
/// a bare `--augment` means keras, a negative number is a flag's value.
func parseCommand(_ arguments: [String]) throws -> ParsableCommand {
    try VGGTLCommand.parseAsRoot(hoistGlobalOptions(expandBareAugment(joinNegativeValues(arguments))))
}

func fail(_ message: String) -> Never {
    writeStandardError("\(Job.prefix)vggtl: error: \(message)\n")
    // Under mpirun the other ranks would wait for this one: end the whole job now.
    if let comm = Job.comm { comm.abort(1) }
    exit(1)
}

/// Runs vggtl: `arguments` without the program's name, `environment` the process's (read for
/// the knobs and the MPI launcher's rank variables, and passed to child processes), `seams`
/// what the caller puts between the commands and the engine (test harnesses; `vggtl` passes
/// none). Exits with the command's status.
public func runVGGTL(arguments: [String], environment: [String: String], seams: Seams = Seams()) -> Never {
    RunContext.begin(RunContext(environment: environment, seams: seams))
    // A child that only reads an HDF5 file for the parent (see Isolation.swift).
    HDF5Isolation.runChildIfAsked()
    HDF5Isolation.install()

    // A file-size limit (ulimit -f) makes writes fail with EFBIG instead of killing the process:
    // the atomic writers then report the file and leave no partial file behind.
    signal(SIGXFSZ, SIG_IGN)

    do {
        var command = try parseCommand(arguments)
        if let launch = Job.launch {
            guard Job.supports(command) else {
                fail("`vggtl \(type(of: command)._commandName)` does not split its work between ranks; run it without mpirun "
                     + "(the commands that do: devices, train, finetune, train-top, evaluate, extract, bench --distributed)")
            }
            // Rank 0 alone prints; the others keep stderr for their warnings and errors.
            if launch.rank != 0 { silenceStandardOutput() }
        }
        try command.run()
        Job.comm?.finalize()
        exit(0)
    } catch let error as VGGTLError {
        if case let .interrupted(signal, _, _, _, _) = error {
            // Not a failure of vggtl, but the run did not finish: the shell's code for the signal.
            if Job.isPrimary { writeStandardError("vggtl: \(FlagWording.message(error))\n") }
            Job.comm?.finalize()
            exit(signal.hasPrefix("SIGTERM") ? 128 + SIGTERM : signal.hasPrefix("SIGUSR1") ? 128 + SIGUSR1 : 128 + SIGINT)
        }
        fail(FlagWording.message(error))
    } catch {
        // A VGGTLError thrown while flags are validated, or a value outside a flag's closed set
        // (before any work): the same one-line form.
        let m = VGGTLCommand.message(for: error)
        switch VGGTLCommand.exitCode(for: error) {
        case .failure where !m.isEmpty && !m.contains("\n"): fail(m)
        case .validationFailure where m.hasPrefix("The value '") && m.contains(". Please provide one of"): fail(oneLineValueError(m))
        default: break
        }
        VGGTLCommand.exit(withError: error)
    }
}

import Foundation
import VGGTLTensors
import VGGTLBackends

/// A tuning knob: an environment variable vggtl reads once, when it starts (here, from the
/// environment `runVGGTL` is given), and hands down as device options, training options or a
/// plain parameter. Library code reads no environment variable. `vggtl devices --knobs` lists
/// them; to add one, add its line to `Knobs.table` and the field it sets to `KnobSettings`.
struct Knob: Sendable {
    let name: String
    /// What a value looks like, as `--knobs` shows it.
    let type: String
    /// What holds while the variable is unset or empty.
    let defaultValue: String
    let help: String
    /// Checks a value and applies it; an error names the variable, the value and what it takes.
    let apply: @Sendable (_ text: String, _ settings: inout KnobSettings) throws -> Void

    init(_ name: String, _ type: String, default defaultValue: String, _ help: String,
         apply: @escaping @Sendable (_ text: String, _ settings: inout KnobSettings) throws -> Void) {
        self.name = name; self.type = type; self.defaultValue = defaultValue; self.help = help; self.apply = apply
    }
}

/// Where the knobs' values go.
struct KnobSettings {
    var cpu = CPUOptions()
    var opencl = OpenCLOptions()
    /// libmpi to load before the usual names.
    var mpiLibrary: String?
    /// Time limit of the child process that reads an HDF5 file (nil: 60 s plus 1 s per 10 MB).
    var hdf5CheckSeconds: Double?
    /// Keras' folder (its downloads are in `models/` under it).
    var kerasHome: URL
}

/// The knobs of one run.
struct Knobs {
    /// The table's variables that are set (empty values count as unset).
    let values: [String: String]
    /// Every valid value applied over the defaults.
    let settings: KnobSettings
    /// The first invalid value in table order. It is thrown where a command first needs the
    /// knobs (when it opens a device), so that a bad value does not stop `--help` or `summary`.
    let error: VGGTLError?

    init(environment env: [String: String]) {
        // Defaults that depend on the user's folders, found as Keras (KERAS_HOME) and the XDG
        // base directories (the kernel cache) find them.
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        var settings = KnobSettings(kerasHome: URL(fileURLWithPath: env["HOME"] ?? NSHomeDirectory()).appendingPathComponent(".keras"))
        settings.opencl.kernelCache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0, isDirectory: true) }
            .map { $0.appendingPathComponent("vggtl/kernels", isDirectory: true) }
            ?? URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache/vggtl/kernels", isDirectory: true)
        var values: [String: String] = [:], firstError: VGGTLError?
        for knob in Self.table {
            guard let text = env[knob.name], !text.isEmpty else { continue }
            values[knob.name] = text
            do { try knob.apply(text, &settings) } catch {
                // The table's checks throw `VGGTLError.badFlag` alone.
                if firstError == nil { firstError = error as? VGGTLError }
            }
        }
        self.values = values; self.settings = settings; self.error = firstError
    }

    /// The settings, or the error of the first invalid knob.
    func validated() throws -> KnobSettings {
        if let error { throw error }
        return settings
    }

    /// The error of a value `name` does not take.
    static func bad(_ name: String, _ value: String, _ expected: String) -> VGGTLError {
        .badFlag(flag: "\(name) (environment variable)", value: value, expected: expected)
    }

    static func names<T: RawRepresentable & CaseIterable>(_: T.Type) -> String where T.RawValue == String {
        T.allCases.map(\.rawValue).joined(separator: ", ")
    }

    static let table: [Knob] = [
        Knob("VGGTL_CONV", "NAME", default: "auto",
             "CPU convolution algorithm where several apply: \(names(CPUConvolutionAlgorithm.self)).") { text, s in
            guard let a = CPUConvolutionAlgorithm(rawValue: text) else {
                throw bad("VGGTL_CONV", text, names(CPUConvolutionAlgorithm.self))
            }
            s.cpu.convolution = a
        },
        Knob("VGGTL_WINOGRAD_CHUNK", "FLOATS", default: "\(CPUOptions().winogradChunkFloats)",
             "Floats of transformed Winograd tiles one CPU thread works on at once.") { text, s in
            guard let n = Int(text), n > 0 else {
                throw bad("VGGTL_WINOGRAD_CHUNK", text, "a positive number of floats (default \(CPUOptions().winogradChunkFloats))")
            }
            s.cpu.winogradChunkFloats = n
        },
        Knob("OPENBLAS_CORETYPE", "NAME", default: "chosen by vggtl from the CPU flags",
             "OpenBLAS kernels (Haswell, SkylakeX, ...), read by OpenBLAS when it loads.") { text, s in
            s.cpu.openblasCoreType = text
        },
        Knob("VGGTL_OCL_CONV", "NAME", default: "auto",
             "OpenCL convolution algorithms to choose among: \(names(OpenCLConvolutionFamily.self)).") { text, s in
            guard let f = OpenCLConvolutionFamily(rawValue: text) else {
                throw bad("VGGTL_OCL_CONV", text, names(OpenCLConvolutionFamily.self))
            }
            s.opencl.convolution = f
        },
        Knob("VGGTL_OCL_AUTOTUNE", "1|0", default: "1 on GPUs and accelerators, 0 on CPUs",
             "Time each OpenCL convolution pass's candidates at first use and keep the fastest.") { text, s in
            switch text.lowercased() {
            case "1", "on", "yes", "true": s.opencl.autotune = true
            case "0", "off", "no", "false": s.opencl.autotune = false
            default: throw bad("VGGTL_OCL_AUTOTUNE", text, "1 or 0")
            }
        },
        Knob("VGGTL_OCL_TILE", "TMxTNxTK/WMxWN", default: "the device's tile table",
             "GEMM tile of the OpenCL implicit-GEMM kernels, e.g. 128x64x16/8x4.") { text, s in
            guard let tile = OpenCLOptions.tile(parsing: text) else {
                throw bad("VGGTL_OCL_TILE", text, "a tile TMxTNxTK/WMxWN such as 128x64x16/8x4 (TM, TN divisible by WM, WN; the work items a multiple of TK)")
            }
            s.opencl.tile = tile
        },
        Knob("VGGTL_OCL_WORKSPACE_MB", "MIB", default: "\(OpenCLOptions().workspaceBytes >> 20)",
             "Most memory one workspace slot of an OpenCL convolution pass may take.") { text, s in
            guard let mb = Int(text), mb > 0 else {
                throw bad("VGGTL_OCL_WORKSPACE_MB", text, "a positive number of MiB (default \(OpenCLOptions().workspaceBytes >> 20))")
            }
            s.opencl.workspaceBytes = mb << 20
        },
        Knob("VGGTL_CLBLAST_XGEMM", "NAME=VALUE,...", default: "CLBlast's own",
             "CLBlast's Xgemm parameters for the OpenCL device, as clblast_tuner_xgemm prints them.") { text, s in
            for item in text.split(separator: ",") {
                let kv = item.split(separator: "=")
                guard kv.count == 2, let value = Int(kv[1].trimmingCharacters(in: .whitespaces)) else {
                    throw bad("VGGTL_CLBLAST_XGEMM", text, "NAME=VALUE pairs separated by commas, e.g. MWG=64,NWG=64,KWG=16")
                }
                s.opencl.clblastXgemm[kv[0].trimmingCharacters(in: .whitespaces)] = value
            }
        },
        Knob("VGGTL_OCL_TUNE_REPORT", "FILE", default: "none",
             "Append what each OpenCL autotune measured (candidates fastest first) to this file.") { text, s in
            s.opencl.tuneReport = text
        },
        Knob("VGGTL_KERNEL_CACHE", "FOLDER|off", default: "$XDG_CACHE_HOME/vggtl/kernels, else ~/.cache/vggtl/kernels",
             "Built OpenCL kernels and tuning choices, per device and driver; off or 0: none.") { text, s in
            s.opencl.kernelCache = text == "off" || text == "0" ? nil : URL(fileURLWithPath: text, isDirectory: true)
        },
        Knob("VGGTL_MPI_LIBRARY", "FILE", default: "libmpi.so.40, libmpi.so",
             "Open MPI's libmpi to load under mpirun.") { text, s in
            s.mpiLibrary = text
        },
        Knob("VGGTL_HDF5_CHECK_SECONDS", "SECONDS", default: "60 plus 1 per 10 MB of the file",
             "Time limit of the child process that reads a .h5 file (a damaged file can hang libhdf5).") { text, s in
            // Not a number: the default, as always.
            if let seconds = Double(text) { s.hdf5CheckSeconds = seconds }
        },
        Knob("KERAS_HOME", "FOLDER", default: "~/.keras",
             "Keras' folder: --weights imagenet looks for and downloads files in its models/.") { text, s in
            s.kerasHome = URL(fileURLWithPath: text)
        },
    ]

    /// The table with this run's values, for `vggtl devices --knobs`.
    var listing: String {
        var lines = ["Tuning knobs: environment variables vggtl reads when it starts (unset or empty: the default)."]
        for knob in Self.table {
            var now = "unset"
            if let value = values[knob.name] {
                now = value
                do { var s = settings; try knob.apply(value, &s) } catch { now += " (invalid: \(error))" }
            }
            lines.append("\(knob.name)=\(knob.type)".padding(toLength: 42, withPad: " ", startingAt: 0) + "now \(now); default \(knob.defaultValue)")
            lines.append("    " + knob.help)
        }
        return lines.joined(separator: "\n")
    }
}

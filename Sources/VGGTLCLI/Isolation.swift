import Foundation
import VGGTLTensors
import VGGTLIO

/// libhdf5 (Debian's 1.10) can crash with SIGSEGV or loop forever on some damaged files (found
/// by fuzzing, see RELIABILITY.md), and no error handling inside a process survives that. So the
/// CLI never calls libhdf5 to read a file itself: a child process (this binary, told by
/// environment variables) reads it and hands the result back through a temporary file
/// (safetensors for weights, JSON for a description or an error). A child killed by a signal or
/// stopped at the time limit means a damaged file, reported as an error that names it.
/// The knob `VGGTL_HDF5_CHECK_SECONDS` overrides the time limit (tests).
enum HDF5Isolation {
    static let operationKey = "VGGTL_INTERNAL_HDF5"      // "read" or "describe"
    static let fileKey = "VGGTL_INTERNAL_HDF5_FILE"
    static let resultKey = "VGGTL_INTERNAL_HDF5_RESULT"

    struct Description: Codable {
        var entries: [WeightFileEntry]
        var metadata: [String: String]
    }

    /// In the child: do the one operation, write its result or error, exit.
    static func runChildIfAsked() {
        let env = RunContext.current.environment
        guard let op = env[operationKey], let path = env[fileKey], let result = env[resultKey] else { return }
        let url = URL(fileURLWithPath: path), out = URL(fileURLWithPath: result)
        do {
            if op == "read" {
                try Safetensors.write(try KerasH5.readHere(url), to: out)
            } else {
                let d = try KerasH5.describeHere(url)
                try JSONEncoder().encode(Description(entries: d.entries, metadata: d.metadata)).write(to: out)
            }
            exit(0)
        } catch {
            let e = error as? VGGTLError ?? .corruptFile(file: path, format: "Keras HDF5", reason: "\(error)")
            try? JSONEncoder().encode(e).write(to: errorURL(out))
            exit(3)
        }
    }

    static func install() {
        // Without /proc (not Linux), files are read in-process.
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
        KerasH5.isolation = KerasH5.Isolation(
            read: { url in
                try inChild(exe, "read", url) { out in
                    var set = try Safetensors.read(out)
                    set.source = url.path
                    return set
                }
            },
            describe: { url in
                try inChild(exe, "describe", url) { out in
                    let d = try JSONDecoder().decode(Description.self, from: Data(contentsOf: out))
                    return (d.entries, d.metadata)
                }
            })
    }

    static func errorURL(_ out: URL) -> URL { out.appendingPathExtension("error") }

    static func inChild<T>(_ exe: String, _ op: String, _ url: URL, _ decode: (URL) throws -> T) throws -> T {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-hdf5-\(getpid())-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: errorURL(out))
        }
        var env = RunContext.current.environment
        env[operationKey] = op
        env[fileKey] = url.path
        env[resultKey] = out.path
        env["SWIFT_BACKTRACE"] = "enable=no"
        // A generous limit that grows with the file (a full VGG16 file, 528 MB, reads in a few seconds).
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        let limit = RunContext.current.knobs.settings.hdf5CheckSeconds ?? 60 + Double(size) / 10_000_000
        let r = try ChildProcess.run(exe, [], environment: env, timeout: limit, captureOutput: false)
        if r.timedOut {
            throw VGGTLError.corruptFile(file: url.path, format: "Keras HDF5",
                                         reason: "the HDF5 library did not finish reading it in \(Int(limit)) s (a damaged file can send it into an endless loop)")
        }
        if r.signaled {
            let name = r.status == SIGSEGV ? "SIGSEGV" : r.status == SIGBUS ? "SIGBUS"
                : r.status == SIGABRT ? "SIGABRT" : r.status == SIGKILL ? "SIGKILL (out of memory?)" : "signal \(r.status)"
            throw VGGTLError.corruptFile(file: url.path, format: "Keras HDF5",
                                         reason: "the HDF5 library crashes reading it (\(name)), so its internal structure is damaged")
        }
        if let data = try? Data(contentsOf: errorURL(out)), let e = try? JSONDecoder().decode(VGGTLError.self, from: data) {
            throw e
        }
        guard r.status == 0 else {
            throw VGGTLError.corruptFile(file: url.path, format: "Keras HDF5", reason: "the process reading it ended with status \(r.status)")
        }
        return try decode(out)
    }
}

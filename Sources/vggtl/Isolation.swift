import Foundation
import VGGTL

/// libhdf5 (Debian's 1.10) can crash with SIGSEGV on some damaged files (found by fuzzing, see
/// RELIABILITY.md), which no error handling in the process survives. Before the CLI reads a .h5
/// file it reads it once in a child process (this binary, with an environment variable); a
/// child killed by a signal means a damaged file, reported as an error. Files that passed are
/// remembered by path, size and modification time. `VGGTL_HDF5_CHECK_SECONDS` overrides the
/// time limit (tests).
enum HDF5Isolation {
    static let childKey = "VGGTL_INTERNAL_CHECK_HDF5"
    nonisolated(unsafe) private static var passed = Set<String>()

    /// In the child: read the file (errors are fine: the parent reports them itself), exit.
    static func runChildIfAsked() {
        guard let path = ProcessInfo.processInfo.environment[childKey] else { return }
        let url = URL(fileURLWithPath: path)
        _ = try? KerasH5.describe(url)
        _ = try? KerasH5.read(url)
        exit(0)
    }

    static func install() { KerasH5.preflight = check }

    static func check(_ url: URL) throws {
        let key = url.path + "|" + fileStamp(url.path)
        if passed.contains(key) { return }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = []
        var env = ProcessInfo.processInfo.environment
        env[childKey] = url.path
        env["SWIFT_BACKTRACE"] = "enable=no"
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return }  // cannot isolate: read in-process as before
        // A damaged file can also send libhdf5 into an endless loop: a generous limit that grows
        // with the file (a full VGG16 file, 528 MB, reads in a few seconds).
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        let limit = ProcessInfo.processInfo.environment["VGGTL_HDF5_CHECK_SECONDS"].flatMap(Double.init) ?? 60 + Double(size) / 10_000_000
        let deadline = Date().addingTimeInterval(limit)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw VGGTLError.corruptFile(file: url.path, format: "Keras HDF5",
                                         reason: "the HDF5 library did not finish reading it in \(Int(limit)) s (a damaged file can send it into an endless loop)")
        }
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal {
            let name = p.terminationStatus == SIGSEGV ? "SIGSEGV" : p.terminationStatus == SIGBUS ? "SIGBUS"
                : p.terminationStatus == SIGABRT ? "SIGABRT" : "signal \(p.terminationStatus)"
            throw VGGTLError.corruptFile(file: url.path, format: "Keras HDF5",
                                         reason: "the HDF5 library crashes reading it (\(name)), so its internal structure is damaged")
        }
        passed.insert(key)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Runs another program with posix_spawn and waitpid, with a time limit.
///
/// Foundation's `Process.waitUntilExit()` waits on a run loop for a termination notice and can
/// hang forever on Linux after many short-lived children (swift-corelibs-foundation; it hung
/// our CI for 80 minutes). Here the parent reads the child's output with poll() and reaps it
/// with waitpid(), so the only wait without a deadline is for a child already sent SIGKILL.
public final class ChildProcess {
    public struct Result {
        /// The exit status, or the signal number when `signal` is true.
        public let status: Int32
        public let signaled: Bool
        public let timedOut: Bool
        public let output: Data
        public var text: String { String(decoding: output, as: UTF8.self) }
    }

    public let pid: pid_t
    private var outFD: Int32        // read end of the child's stdout+stderr pipe; -1 when not captured
    private let ownGroup: Bool
    private var buffer = Data()
    private var reaped: Result?

    /// Starts `executable` with `arguments`. `environment` replaces the parent's when given.
    /// `captureOutput`: stdout and stderr go to one pipe read here, else to /dev/null.
    /// `ownProcessGroup`: the child leads a new process group, so a kill reaches its children too.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                captureOutput: Bool = true, ownProcessGroup: Bool = false) throws {
        var fds: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&fds) == 0 else { throw VGGTLError.library(name: "posix", reason: "pipe: \(errnoText())") }
            // Not inherited by other children this process starts (they would hold the pipe open).
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if captureOutput {
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // The child starts with no blocked signals and default SIGINT/SIGTERM/SIGPIPE handling,
        // whatever this process (a test runner, a training run with handlers) has set.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE, SIGXFSZ] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if ownProcessGroup { flags |= Int32(POSIX_SPAWN_SETPGROUP); posix_spawnattr_setpgroup(&attr, 0) }
        posix_spawnattr_setflags(&attr, Int16(flags))

        let argv = [executable] + arguments
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = (environment ?? [:]).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgv + cEnv { free(p) } }
        var child: pid_t = 0
        // Without `environment` the child inherits this process's environment block as it is.
        #if canImport(Darwin)
        let inherited = _NSGetEnviron().pointee
        #else
        let inherited = environ
        #endif
        let rc = environment == nil ? posix_spawn(&child, executable, &actions, &attr, &cArgv, inherited)
            : posix_spawn(&child, executable, &actions, &attr, &cArgv, &cEnv)
        if captureOutput { close(fds[1]) }
        guard rc == 0 else {
            if captureOutput { close(fds[0]) }
            throw VGGTLError.library(name: "posix_spawn", reason: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        outFD = captureOutput ? fds[0] : -1
        ownGroup = ownProcessGroup
    }

    deinit {
        if outFD >= 0 { close(outFD); outFD = -1 }
        if reaped == nil { signal(SIGKILL); _ = wait(timeout: .infinity) }
    }

    /// Runs a program to the end (or `timeout` seconds, then SIGKILL) and returns what it printed.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Double, captureOutput: Bool = true) throws -> Result {
        let p = try ChildProcess(executable, arguments, environment: environment, captureOutput: captureOutput,
                                 ownProcessGroup: true)
        return p.wait(timeout: timeout)
    }

    /// Sends `sig` to the child (and its process group when it leads one).
    public func signal(_ sig: Int32) {
        guard reaped == nil else { return }
        kill(ownGroup ? -pid : pid, sig)
    }

    /// Reads output until it contains `needle`, the pipe ends, or `timeout` seconds pass;
    /// returns whether `needle` was seen. The text stays part of the final output.
    @discardableResult
    public func read(until needle: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        let bytes = Data(needle.utf8)
        while buffer.range(of: bytes) == nil {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 || !readChunk(waitingAtMost: left) { return buffer.range(of: bytes) != nil }
        }
        return true
    }

    /// Collects output until the child exits; after `timeout` seconds it is killed
    /// (`timedOut` in the result). Calling again returns the same result.
    public func wait(timeout: Double) -> Result {
        if let reaped { return reaped }
        let deadline = timeout.isFinite ? Date().addingTimeInterval(timeout) : Date.distantFuture
        var timedOut = false
        // Output first: the pipe ends when the child (and any child it started) exits.
        while outFD >= 0 {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; break }
            if !readChunk(waitingAtMost: left) { break }
        }
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, timedOut ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if r == 0 {
                if deadline.timeIntervalSinceNow <= 0 { timedOut = true; kill(ownGroup ? -pid : pid, SIGKILL); continue }
                usleep(1_000)
            }
        }
        if timedOut { kill(ownGroup ? -pid : pid, SIGKILL) }   // whatever of its group is left
        if outFD >= 0 { while readChunk(waitingAtMost: 0) {} }
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        let result = Result(status: signaled ? status & 0x7f : (status >> 8) & 0xff, signaled: signaled,
                            timedOut: timedOut, output: buffer)
        reaped = result
        return result
    }

    /// One read of whatever is available within `waitingAtMost` seconds; false at end of output.
    private func readChunk(waitingAtMost seconds: Double) -> Bool {
        guard outFD >= 0 else { return false }
        var p = pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(seconds, 3600)) * 1000)
        let ready = poll(&p, 1, ms)
        if ready < 0 { return errno == EINTR }
        if ready == 0 { return seconds > 0 }  // nothing yet; the caller checks its deadline
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = systemRead(outFD, &chunk, chunk.count)
        if n < 0 { return errno == EINTR || errno == EAGAIN }
        if n == 0 { close(outFD); outFD = -1; return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }
}

#if canImport(Glibc)
private let systemRead = Glibc.read
#else
private let systemRead = Darwin.read
#endif

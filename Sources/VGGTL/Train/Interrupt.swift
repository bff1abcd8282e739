import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C (SIGINT) and SIGTERM during training: the first one only sets a flag, which the trainer
/// reads after every batch; it then writes a checkpoint at that batch and stops. A second signal
/// of either kind ends the process at once (the default action): the checkpoints are written
/// atomically, so the previous one survives even that.
public enum TrainingInterrupt {
    /// The signal number received (0: none). Written by the handler, read by the training loop.
    private static let flag: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    /// Installs the handlers (idempotent). The CLI calls it before training starts. `alsoUSR1`:
    /// SIGUSR1 requests the same stop (data-parallel jobs: mpirun forwards SIGUSR1 to every rank
    /// at once, while on Ctrl-C or SIGTERM it sends the ranks SIGTERM only after a delay).
    public static func install(alsoUSR1: Bool = false) {
        _ = flag
        for s in [SIGINT, SIGTERM] + (alsoUSR1 ? [SIGUSR1] : []) {
            signal(s) { received in
                if TrainingInterrupt.flag.pointee != 0 {
                    // Second signal: stop now, as the user asks.
                    signal(received, SIG_DFL)
                    raise(received)
                    return
                }
                TrainingInterrupt.flag.pointee = sig_atomic_t(received)
            }
        }
    }

    /// Puts back the default actions and clears the flag.
    public static func uninstall() {
        signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL); signal(SIGUSR1, SIG_DFL)
        flag.pointee = 0
    }

    /// The pending signal's name ("SIGINT", "SIGTERM"), or nil.
    public static var pending: String? {
        let s = pendingSignal
        return s == 0 ? nil : name(of: s)
    }

    /// The pending signal's number (0: none).
    public static var pendingSignal: Int32 { Int32(flag.pointee) }

    public static func name(of s: Int32) -> String {
        s == SIGINT ? "SIGINT (Ctrl-C)" : s == SIGTERM ? "SIGTERM" : s == SIGUSR1 ? "SIGUSR1" : "signal \(s)"
    }

    /// Clears a pending request (after it has been handled).
    public static func clear() { flag.pointee = 0 }

    /// Test hook: `VGGTL_TEST_INTERRUPT_AFTER_BATCHES=N` (or `N:TERM`) makes the trainer send
    /// itself SIGINT (SIGTERM) after its N-th batch, through the real handler; with `N:WAIT` it
    /// prints "vggtl-test: waiting for a signal" after batch N and waits (up to a minute) for
    /// one from outside.
    static let testHook: (batches: Int, signal: Int32?)? = {
        guard let text = ProcessInfo.processInfo.environment["VGGTL_TEST_INTERRUPT_AFTER_BATCHES"] else { return nil }
        let parts = text.split(separator: ":")
        guard let n = parts.first.flatMap({ Int($0) }), n >= 1 else { return nil }
        let kind = parts.count > 1 ? parts[1].uppercased() : "INT"
        return (n, kind == "WAIT" ? nil : kind == "TERM" ? SIGTERM : SIGINT)
    }()

    /// Called by the trainer after each batch with the number of batches this process has run.
    static func batchFinished(_ count: Int) {
        guard let hook = testHook, hook.batches == count else { return }
        if let s = hook.signal {
            raise(s)
        } else {
            print("vggtl-test: waiting for a signal")
            fflush(stdout)
            for _ in 0..<600 where pending == nil { usleep(100_000) }
        }
    }
}

/// Test hook for "kill -9 at any moment": `VGGTL_TEST_CRASH_AT=POINT[:N]` kills the process with
/// SIGKILL the N-th time (default 1st) it passes the named point. Points: `checkpoint-arrays`
/// (the arrays file of a checkpoint is written, its JSON not yet), `checkpoint-json` (the new
/// JSON is complete under its temporary name, not yet renamed).
enum CrashPoint {
    private static let target: (name: String, count: Int)? = {
        guard let text = ProcessInfo.processInfo.environment["VGGTL_TEST_CRASH_AT"] else { return nil }
        let parts = text.split(separator: ":")
        guard let name = parts.first else { return nil }
        return (String(name), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var passed: [String: Int] = [:]

    static func reach(_ name: String) {
        guard let target, target.name == name else { return }
        lock.lock()
        passed[name, default: 0] += 1
        let n = passed[name]!
        lock.unlock()
        if n == target.count { kill(getpid(), SIGKILL) }
    }
}

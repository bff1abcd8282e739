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
    /// nonisolated(unsafe): the pointer never changes after its one-time initialisation (Swift
    /// runs a static's initialiser once, thread-safely), and what it points to is a single
    /// sig_atomic_t, the one type C lets a signal handler write while other code reads it.
    nonisolated(unsafe) private static let flag: UnsafeMutablePointer<sig_atomic_t> = {
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
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import VGGTLTensors

/// A folder taken by one process for as long as it writes there (a run folder, a features
/// folder): `.vggtl.lock` in it, held with flock(2) and naming its holder (pid, host, command,
/// start). The kernel drops the flock when its process ends however it ends, so a lock file
/// left by a killed process does not block the folder: the next process takes it over. Where
/// the filesystem has no flock, a holder whose pid no longer runs on this host counts as gone.
public final class FolderLock {
    public static let fileName = ".vggtl.lock"

    /// Who holds a folder, as its lock file records it.
    public struct Holder: Codable, Sendable {
        public var pid: Int32
        public var host: String
        public var command: String
        public var since: String

        public var description: String { "pid \(pid) on \(host) (\(command), since \(since))" }

        /// Still running, as far as this host can tell: another host's process is assumed to.
        var isAlive: Bool {
            guard host == ProcessInfo.processInfo.hostName else { return true }
            return kill(pid, 0) == 0 || errno == EPERM
        }
    }

    public let folder: URL
    public var file: URL { folder.appendingPathComponent(Self.fileName) }
    private var fd: Int32 = -1

    /// Takes `folder` (created if needed) for this process, or throws `folderInUse` naming the
    /// process that has it.
    public init(_ folder: URL, command: String = FolderLock.commandLine) throws {
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = file.path
        while fd < 0 {
            let f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard f >= 0 else { throw VGGTLError.fileWrite(file: path, reason: errnoText()) }
            if flock(f, LOCK_EX | LOCK_NB) != 0 {
                let noFlock = errno != EWOULDBLOCK
                let holder = Self.holder(at: path)
                if !noFlock || holder?.isAlive == true {
                    close(f)
                    throw VGGTLError.folderInUse(folder: folder.path, lockFile: path, holder: holder?.description ?? "another process")
                }
            }
            // A holder that was releasing may have removed the file between open and flock:
            // then this lock is on a file no one else sees; start again on the new one.
            var opened = stat(), named = stat()
            guard fstat(f, &opened) == 0, stat(path, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev else {
                close(f)
                continue
            }
            fd = f
        }
        let me = Holder(pid: getpid(), host: ProcessInfo.processInfo.hostName, command: command,
                        since: ISO8601DateFormatter().string(from: Date()))
        let text = Array((try JSONEncoder().encode(me)) + [0x0A])
        // What a killed holder left is replaced.
        guard ftruncate(fd, 0) == 0, text.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == text.count else {
            let reason = errnoText()
            release()
            throw VGGTLError.fileWrite(file: path, reason: reason)
        }
    }

    deinit { release() }

    /// This process's command line as the holder's name shows it: the program's name, then its
    /// arguments (cut short).
    public static var commandLine: String {
        let args = CommandLine.arguments
        let text = ([args.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "?"] + args.dropFirst()).joined(separator: " ")
        return text.count > 200 ? String(text.prefix(200)) + " ..." : text
    }

    /// Gives the folder back (idempotent): the lock file goes, then the flock.
    public func release() {
        guard fd >= 0 else { return }
        unlink(file.path)
        close(fd)
        fd = -1
    }

    /// The holder a lock file names; nil when it names none (being written, or unreadable).
    static func holder(at path: String) -> Holder? {
        // The holder writes its name just after taking the lock: give it a moment.
        for attempt in 0..<10 {
            if let data = FileManager.default.contents(atPath: path), let h = try? JSONDecoder().decode(Holder.self, from: data) { return h }
            if attempt < 9 { usleep(20_000) }
        }
        return nil
    }
}

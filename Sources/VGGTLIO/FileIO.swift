#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import VGGTLTensors

/// A file opened for reading with positioned reads; every short read is a truncation error that
/// names the file and both byte counts.
final class BinaryFileReader {
    let url: URL
    let format: String
    let size: Int
    private let fd: Int32

    init(_ url: URL, format: String) throws {
        self.url = url; self.format = format
        fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VGGTLError.unsupportedFile(file: url.path, reason: errnoText()) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = errnoText(); close(fd)
            throw VGGTLError.unsupportedFile(file: url.path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw VGGTLError.unsupportedFile(file: url.path, reason: "not a regular file")
        }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `into`.
    func read(at offset: Int, count: Int, into: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw VGGTLError.truncatedFile(file: url.path, format: format, expectedBytes: saturatingSum(offset, count), actualBytes: size)
        }
        var done = 0
        while done < count {
            let n = pread(fd, into + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw VGGTLError.unsupportedFile(file: url.path, reason: "read failed: \(errnoText())")
            }
            if n == 0 { throw VGGTLError.truncatedFile(file: url.path, format: format, expectedBytes: offset + count, actualBytes: offset + done) }
            done += n
        }
    }

    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        // Bounds first: a corrupt length field must not allocate gigabytes before failing.
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw VGGTLError.truncatedFile(file: url.path, format: format, expectedBytes: saturatingSum(offset, count), actualBytes: size)
        }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, count: count, into: $0.baseAddress!) }
        return out
    }

    /// Up to `count` bytes from `offset` (fewer at the end of the file); for sniffing magic bytes.
    func prefix(at offset: Int, count: Int) throws -> [UInt8] {
        let n = max(0, min(count, size - offset))
        return try bytes(at: offset, count: n)
    }
}

/// Writes a file atomically: everything goes to a temporary file in the same directory, which is
/// flushed to disk (fsync) and renamed over the final name only when complete. A crash or an
/// error never leaves a partial file under the final name.
package final class AtomicFileWriter {
    let url: URL
    let tempURL: URL
    private var fd: Int32
    private var finished = false

    package init(_ url: URL) throws {
        self.url = url
        let dir = url.deletingLastPathComponent()
        tempURL = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        fd = open(tempURL.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw VGGTLError.fileWrite(file: url.path, reason: errnoText()) }
    }

    deinit { abandon() }

    package func write(_ p: UnsafeRawBufferPointer) throws {
        guard var base = p.baseAddress else { return }
        var left = p.count
        while left > 0 {
            let n = posixWrite(fd, base, left)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errnoText(); abandon()
                throw VGGTLError.fileWrite(file: url.path, reason: reason)
            }
            base += n; left -= n
        }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// fsync, close and rename over the final name; then fsync the directory so the rename lasts.
    package func commit(beforeRename: () -> Void = {}) throws {
        guard !finished else { return }
        if fsync(fd) != 0 { let r = errnoText(); abandon(); throw VGGTLError.fileWrite(file: url.path, reason: "fsync: \(r)") }
        let closed = close(fd); fd = -1
        if closed != 0 { let r = errnoText(); abandon(); throw VGGTLError.fileWrite(file: url.path, reason: "close: \(r)") }
        beforeRename()
        finished = true
        try AtomicFileWriter.publish(tempURL, as: url)
    }

    /// Removes the temporary file; the final name is untouched.
    func abandon() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempURL.path)
    }

    /// A temporary path beside `url` for libraries that write by name (libhdf5).
    static func temporaryURL(beside url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// fsyncs `temp` (written by someone else), renames it to `url` and fsyncs the directory.
    static func publish(_ temp: URL, as url: URL) throws {
        let fd = open(temp.path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        guard rename(temp.path, url.path) == 0 else {
            let reason = errnoText(); unlink(temp.path)
            throw VGGTLError.fileWrite(file: url.path, reason: "rename: \(reason)")
        }
        let dfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#else
private let posixWrite = Darwin.write
#endif

/// a + b, or Int.max when that overflows (for messages about absurd sizes).
func saturatingSum(_ a: Int, _ b: Int) -> Int {
    let (s, o) = a.addingReportingOverflow(b)
    return o ? Int.max : s
}

/// Floats to little-endian bytes and back (a no-op on little-endian hosts).
@inline(__always) func isLittleEndianHost() -> Bool { 1.littleEndian == 1 }

import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VGGTLTensors

/// Reads a whole file; errors name the file and the reason (missing, a folder, unreadable).
func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        let e = errno
        let why = e == ENOENT ? "no such file" : String(cString: strerror(e))
        throw VGGTLError.invalidArgument("cannot read \(path): \(why)")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
        throw VGGTLError.invalidArgument("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        throw VGGTLError.invalidArgument("cannot read \(path): it is a folder, not a file")
    }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var filled = 0
    var failure: Int32 = 0
    bytes.withUnsafeMutableBytes { buffer in
        while filled < buffer.count {
            let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if n < 0 { if errno == EINTR { continue }; failure = errno; return }
            if n == 0 { return }  // the file shrank while we read it
            filled += n
        }
    }
    if failure != 0 {
        throw VGGTLError.invalidArgument("cannot read \(path): \(String(cString: strerror(failure)))")
    }
    if filled < bytes.count { bytes.removeSubrange(filled...) }
    return bytes
}

/// True when the bytes start with the gzip magic (1f 8b).
func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

/// Inflates gzip data (several members are concatenated, as gzip does). `name` is for errors.
func gunzip(_ input: [UInt8], name: String, limit: Int = 1 << 32) throws -> [UInt8] {
    // ISIZE, the last four bytes, is the uncompressed size mod 2^32: a good first guess.
    var capacity = 1 << 16
    if input.count >= 4 {
        let n = input.count
        let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
        // Deflate cannot expand more than ~1032:1, so a larger ISIZE is garbage (a truncated file).
        capacity = max(capacity, min(isize, input.count * 1032))
    }
    var output = [UInt8](repeating: 0, count: capacity)
    var produced = 0
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw VGGTLError.library(name: "zlib", reason: "inflateInit2 failed for \(name)")
    }
    defer { inflateEnd(&stream) }
    var consumed = 0
    while true {
        if produced == output.count {
            guard output.count < limit else {
                throw VGGTLError.invalidArgument("\(name): uncompresses to more than \(mib(limit)); is it really a gzip-compressed IDX file?")
            }
            output.append(contentsOf: [UInt8](repeating: 0, count: output.count))
        }
        let status: Int32 = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + consumed)
                stream.avail_in = UInt32(min(inBuf.count - consumed, Int(UInt32.max)))
                stream.next_out = outBuf.baseAddress! + produced
                stream.avail_out = UInt32(min(outBuf.count - produced, Int(UInt32.max)))
                let inBefore = Int(stream.avail_in), outBefore = Int(stream.avail_out)
                let s = inflate(&stream, Z_NO_FLUSH)
                consumed += inBefore - Int(stream.avail_in)
                produced += outBefore - Int(stream.avail_out)
                return s
            }
        }
        switch status {
        case Z_STREAM_END:
            // Another gzip member may follow; trailing zero padding is ignored.
            if consumed < input.count, input[consumed...].contains(where: { $0 != 0 }) {
                inflateReset(&stream)
                continue
            }
            output.removeSubrange(produced...)
            return output
        case Z_OK:
            continue
        case Z_BUF_ERROR:
            if stream.avail_out == 0 { continue }  // needs more room: grown at the loop top
            throw VGGTLError.invalidArgument("\(name): the gzip data is truncated (the download may be incomplete); download the file again")
        default:
            let detail = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw VGGTLError.invalidArgument("\(name): corrupt gzip data (\(detail)); download the file again")
        }
    }
}

// `stdout` is a C global, which Swift 6 will not name from any thread; stdio locks its streams
// itself, so flushing it from any thread is safe. (Before Foundation, which would import the
// C library without @preconcurrency.)
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import Foundation

/// Writes to stderr after flushing stdout, so that when both go to one pipe or file, lines
/// arrive in the order they were written (stdout is block-buffered there, stderr is not).
public func writeStandardError(_ text: String) {
    flushStandardOutput()
    FileHandle.standardError.write(Data(text.utf8))
}

/// Writes out what `print` has buffered (a progress line drawn in place, output before a crash).
public func flushStandardOutput() {
    fflush(stdout)
}

/// Sends what is printed from now on to /dev/null (the ranks of a job other than rank 0).
public func silenceStandardOutput() {
    _ = freopen("/dev/null", "w", stdout)
}

import Foundation

/// Writes to stderr after flushing stdout, so that when both go to one pipe or file, lines
/// arrive in the order they were written (stdout is block-buffered there, stderr is not).
public func writeStandardError(_ text: String) {
    fflush(stdout)
    FileHandle.standardError.write(Data(text.utf8))
}

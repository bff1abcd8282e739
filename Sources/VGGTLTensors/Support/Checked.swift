#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Small helpers that file readers (IO, Data) and process code (Support) share; here, below
// them all, because IO and Data sit beside each other and import neither.

/// The text of the last C library error (`errno`).
package func errnoText() -> String { String(cString: strerror(errno)) }

/// The number of elements of `shape`, or nil when a dimension is negative or the product overflows.
package func checkedElementCount(_ shape: [Int], elementSize: Int = 1) -> Int? {
    var n = elementSize
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        if o { return nil }
        n = p
    }
    return n
}

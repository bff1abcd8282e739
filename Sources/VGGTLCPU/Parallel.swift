import Dispatch

/// Splits 0..<count into at most `threads` contiguous chunks of at least `grain` items and
/// runs them concurrently. Small jobs run inline: a dispatch costs more than they do.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, grain: Int = 4096, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = min(threads, max(1, count / max(grain, 1)))
    if chunks <= 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { i in
        body((count * i / chunks)..<(count * (i + 1) / chunks))
    }
}

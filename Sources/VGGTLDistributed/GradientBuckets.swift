import CHalf
import Foundation
import VGGTLNN

/// Sums the trainable gradients of all ranks in buckets, in place (MPI_Iallreduce with
/// MPI_IN_PLACE on a host copy), each bucket started as soon as backward has finished all of its
/// parameters, so communication runs while backward continues below. Buckets hold parameters in
/// backward order (the reverse of the parameter list); they are started strictly in order on
/// every rank, as MPI requires the same order of collectives everywhere. Frozen parameters are
/// never in a bucket: a frozen trunk costs no communication.
package final class GradientBuckets {
    let comm: Communicator
    /// Floats per bucket (the last parameter may overfill one; a parameter is never split).
    let capacity: Int
    let compression: GradientCompression

    final class Bucket {
        let parameters: [Parameter]
        let offsets: [Int]
        let count: Int
        let buffer: UnsafeMutablePointer<Float>
        /// The bucket as IEEE half floats, when gradients travel compressed.
        var half: UnsafeMutablePointer<UInt16>?
        var ready = Set<ObjectIdentifier>()
        var pending: [Communicator.Pending] = []
        var started = false
        init(_ parameters: [Parameter]) {
            self.parameters = parameters
            var offsets: [Int] = [], total = 0
            for p in parameters { offsets.append(total); total += p.value.count }
            self.offsets = offsets; count = total
            buffer = .allocate(capacity: max(total, 1))
        }
        deinit { buffer.deallocate(); half?.deallocate() }
    }

    private(set) var buckets: [Bucket] = []
    private var bucketOf: [ObjectIdentifier: Int] = [:]
    private var key: [ObjectIdentifier] = []
    private var nextToStart = 0
    /// An MPI failure inside the (non-throwing) backward hook, rethrown by `finish`.
    private var failure: Error?
    /// Seconds `finish` waited for communication in the last step (what overlap did not hide).
    package private(set) var lastWait = 0.0

    package init(comm: Communicator, megabytes: Double, compression: GradientCompression = .none) {
        self.comm = comm
        self.compression = compression
        capacity = max(1, Int(megabytes * 1_048_576 / 4))
    }

    /// Bytes each step's allreduce moves per rank and direction (before the ring's factor).
    var bytes: Int { buckets.reduce(0) { $0 + $1.count } * compression.bytesPerValue }

    /// Before backward: buckets for these trainable parameters (rebuilt when the set changes, as
    /// when a two-stage fine-tune unfreezes the trunk).
    package func begin(_ trainable: [Parameter]) {
        let ids = trainable.map(ObjectIdentifier.init)
        if ids != key {
            key = ids
            buckets = []; bucketOf = [:]
            var current: [Parameter] = [], size = 0
            for p in trainable.reversed() {
                current.append(p); size += p.value.count
                if size >= capacity { buckets.append(Bucket(current)); current = []; size = 0 }
            }
            if !current.isEmpty { buckets.append(Bucket(current)) }
            if compression == .fp16 { for b in buckets { b.half = .allocate(capacity: max(b.count, 1)) } }
            for (i, b) in buckets.enumerated() { for p in b.parameters { bucketOf[ObjectIdentifier(p)] = i } }
        }
        for b in buckets { b.ready = []; b.pending = []; b.started = false }
        nextToStart = 0
        failure = nil
    }

    /// The backward hook: marks the parameters final, starts every bucket now complete (in
    /// order), and drives the reductions in flight.
    package func ready(_ parameters: [Parameter]) {
        guard failure == nil else { return }
        do {
            for p in parameters {
                guard let i = bucketOf[ObjectIdentifier(p)] else { continue }
                buckets[i].ready.insert(ObjectIdentifier(p))
            }
            while nextToStart < buckets.count, buckets[nextToStart].ready.count == buckets[nextToStart].parameters.count {
                try start(buckets[nextToStart], index: nextToStart)
                nextToStart += 1
            }
            try progress()
        } catch { failure = error }
    }

    private func start(_ b: Bucket, index: Int) throws {
        for (p, offset) in zip(b.parameters, b.offsets) {
            let out = UnsafeMutableBufferPointer(start: b.buffer + offset, count: p.value.count)
            if let g = p.grad { g.device.read(g.buffer, offset: 0, into: out) } else { out.initialize(repeating: 0) }
        }
        let what = "gradient allreduce (bucket \(index + 1) of \(buckets.count), \(b.parameters.first!.name)...)"
        if let half = b.half {
            vggtl_float_to_half(b.buffer, half, b.count)
            b.pending = try comm.startAllreduceHalf(half, count: b.count, what: what + " in fp16")
        } else {
            b.pending = try comm.startAllreduce(b.buffer, count: b.count, what: what)
        }
        b.started = true
    }

    private func progress() throws {
        for b in buckets where b.started { for p in b.pending { _ = try comm.isDone(p) } }
    }

    /// After backward: starts what is left, waits for everything, and writes the sums back
    /// (times `scale`) into the gradients, which are then the same on every rank.
    package func finish(scale: Float = 1) throws {
        if let failure { throw failure }
        while nextToStart < buckets.count {
            try start(buckets[nextToStart], index: nextToStart)
            nextToStart += 1
        }
        let before = comm.waitSeconds
        try comm.wait(buckets.flatMap(\.pending))
        lastWait = comm.waitSeconds - before
        for (k, b) in buckets.enumerated() {
            if let half = b.half {
                // Every rank holds the same sums: an overflow stops them all alike.
                vggtl_half_to_float(half, b.buffer, b.count)
                guard UnsafeBufferPointer(start: b.buffer, count: b.count).allSatisfy(\.isFinite) else {
                    throw comm.fail("fp16 gradient compression: the summed gradients of bucket \(k + 1) (\(b.parameters.first!.name)...) left "
                        + "fp16's range (|g| > 65504) or were not finite; run without \(comm.settingName(.gradientCompression)) fp16, or lower the learning rate if training diverged")
                }
            }
            if scale != 1 { for i in 0..<b.count { b.buffer[i] *= scale } }
            for (p, offset) in zip(b.parameters, b.offsets) {
                let g = try p.gradient()
                g.device.write(UnsafeBufferPointer(start: b.buffer + offset, count: p.value.count), to: g.buffer, offset: 0)
            }
        }
    }
}

/// How gradients travel between ranks: float32 (exact sums up to order), or IEEE half floats
/// (half the bytes; each value keeps 11 significant bits, and the range is +-65504).
public enum GradientCompression: String, CaseIterable, Sendable {
    case none, fp16

    /// Bytes one gradient value takes on the wire.
    public var bytesPerValue: Int { self == .fp16 ? 2 : 4 }
}

import CHalf
import Foundation
import VGGTLTensors

/// Where this process sits in an `mpirun` job, read from the launcher's environment before MPI
/// starts (the device choice needs the local rank first). nil outside mpirun.
public struct MPILaunch: Sendable, Equatable {
    public var rank: Int, size: Int, localRank: Int, localSize: Int

    public init(rank: Int, size: Int, localRank: Int, localSize: Int) {
        self.rank = rank; self.size = size; self.localRank = localRank; self.localSize = localSize
    }

    /// Open MPI's `OMPI_COMM_WORLD_*` variables (mpirun, and srun with Open MPI's PMIx plugin),
    /// from the environment the CLI hands in.
    public static func fromEnvironment(_ env: [String: String]) -> MPILaunch? {
        func int(_ key: String) -> Int? { env[key].flatMap { Int($0) } }
        guard let size = int("OMPI_COMM_WORLD_SIZE"), let rank = int("OMPI_COMM_WORLD_RANK"), size >= 1, rank >= 0, rank < size else { return nil }
        return MPILaunch(rank: rank, size: size, localRank: int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0,
                         localSize: int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1)
    }
}

/// MPI_COMM_WORLD for data-parallel training. Every operation is non-blocking underneath and
/// waited for with a deadline (`timeout`): a rank that died or hangs ends the job with a message
/// that names it, never an endless wait in MPI_Allreduce. Errors come back as codes
/// (MPI_ERRORS_RETURN) and become `VGGTLError.distributed`. All calls come from one thread.
public final class Communicator {
    public let rank: Int, size: Int, localRank: Int, localSize: Int
    /// Seconds one collective may wait for the other ranks before the job is ended.
    public var timeout: Double
    /// How messages name the settings they mention (the CLI names its flags).
    public var settingName: (Setting) -> String = { $0.title }
    /// "pid 123 on node1" for every rank, for messages about the others.
    public private(set) var peers: [String] = []
    /// The MPI library, for `vggtl devices`.
    public let libraryDescription: String
    /// Seconds spent waiting for communication to finish (what overlap did not hide).
    public var waitSeconds = 0.0

    let mpi: MPILibrary
    private let comm: MPILibrary.Handle
    /// Collectives started so far, and the one being waited for: what a hang report shows.
    private var sequence = 0
    private var waitingFor = "nothing yet"
    private var diagnostics: Diagnostics!
    private var finished = false

    /// Tags of the point-to-point messages a hang report exchanges (collectives do not use tags).
    static let probeTag: Int32 = 31_001, replyTag: Int32 = 31_002, gatherTag: Int32 = 31_003

    /// nonisolated(unsafe): read and written only by `start`, which MPI's funneled mode (only the
    /// main thread calls MPI) already confines to the main thread.
    nonisolated(unsafe) private static var started = false

    /// MPI_Init_thread (funneled: only the main thread calls MPI), MPI_ERRORS_RETURN on the
    /// world communicator, and an exchange of host names and process ids. `library`: the path of
    /// libmpi to load first (default: libmpi.so.40, libmpi.so).
    public static func start(_ launch: MPILaunch, timeout: Double, library: String? = nil) throws -> Communicator {
        precondition(!started, "MPI is started once per process")
        started = true
        let mpi = try MPILibrary(path: library)
        var provided: Int32 = 0
        let code = mpi.initThread(nil, nil, MPILibrary.threadFunneled, &provided)
        guard code == 0 else {
            throw VGGTLError.distributed(rank: launch.rank, size: launch.size, reason: "MPI_Init_thread failed: \(mpi.describe(code))")
        }
        let c = try Communicator(mpi: mpi, launch: launch, timeout: timeout)
        try c.exchangePeers()
        return c
    }

    private init(mpi: MPILibrary, launch: MPILaunch, timeout: Double) throws {
        self.mpi = mpi
        comm = mpi.commWorld
        var r: Int32 = 0, s: Int32 = 0
        _ = mpi.commSetErrhandler(comm, mpi.errorsReturn)
        _ = mpi.commRank(comm, &r)
        _ = mpi.commSize(comm, &s)
        rank = Int(r); size = Int(s)
        localRank = launch.localRank; localSize = launch.localSize
        self.timeout = timeout
        libraryDescription = "\(mpi.version) (\(mpi.path))"
        guard rank == launch.rank, size == launch.size else {
            throw VGGTLError.distributed(rank: rank, size: size, reason: "MPI says rank \(rank) of \(size) but the launcher's environment says rank \(launch.rank) of \(launch.size)")
        }
        diagnostics = try Diagnostics(self)
    }

    private func exchangePeers() throws {
        var name = [CChar](repeating: 0, count: 256)
        var length: Int32 = 0
        _ = mpi.processorName(&name, &length)
        let me = "pid \(getpid()) on \(String(cString: name))"
        let all = try allgatherStrings(me, what: "start-up (host names)")
        peers = all
    }

    /// "rank 1 (pid 123 on node1)".
    public func describe(rank r: Int) -> String {
        r < peers.count ? "rank \(r) (\(peers[r]))" : "rank \(r)"
    }

    func fail(_ reason: String) -> VGGTLError { .distributed(rank: rank, size: size, reason: reason) }

    func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        throw fail("\(call) failed: \(mpi.describe(code)); another rank may have died or the network failed")
    }

    // MARK: - Waiting with a deadline

    /// A started non-blocking operation.
    final class Pending {
        var request: MPILibrary.Request
        let what: String
        let sequence: Int
        var done = false
        init(request: MPILibrary.Request, what: String, sequence: Int) {
            self.request = request; self.what = what; self.sequence = sequence
        }
    }

    func started(_ what: String, _ start: (UnsafeMutablePointer<MPILibrary.Request>) -> Int32) throws -> Pending {
        sequence += 1
        var request: MPILibrary.Request = nil
        try check(start(&request), what)
        return Pending(request: request, what: what, sequence: sequence)
    }

    /// True when `p` has completed (MPI_Test also drives progress of the others).
    func isDone(_ p: Pending) throws -> Bool {
        if p.done { return true }
        var flag: Int32 = 0
        try check(mpi.test(&p.request, &flag, nil), "MPI_Test (\(p.what))")
        p.done = flag != 0
        return p.done
    }

    /// Waits for `p`: at most `timeout` seconds, answering other ranks' hang probes meanwhile.
    func wait(_ p: Pending) throws {
        try wait([p])
    }

    func wait(_ all: [Pending]) throws {
        guard let first = all.first(where: { !$0.done }) else { return }
        let t0 = Date()
        waitingFor = "\(first.what) (collective #\(first.sequence))"
        defer { waitingFor = "computing after \(first.what) (collective #\(first.sequence))" }
        var idle = 0
        while true {
            var pending = false
            for p in all where try !isDone(p) { pending = true; break }
            if !pending { waitSeconds += Date().timeIntervalSince(t0); return }
            try diagnostics.serve()
            let waited = Date().timeIntervalSince(t0)
            if waited > timeout { throw try diagnostics.hangReport(waitingFor: first) }
            backOff(&idle, waited: waited)
        }
    }

    /// Open MPI's non-blocking collectives advance only inside MPI calls (a large allreduce is
    /// hundreds of rounds), so a wait polls with sched_yield for its first 0.2 s: fast, and it
    /// still gives the core to a rank that computes on it. Longer waits (a rank still in its
    /// backward, rank 0 writing a checkpoint) sleep up to 1 ms between polls.
    private func backOff(_ idle: inout Int, waited: Double) {
        if waited < 0.2 { sched_yield(); return }
        idle += 1
        usleep(UInt32(min(1000, 50 * idle)))
    }

    // MARK: - Collectives

    private var halfSumOp: MPILibrary.Handle?

    public enum Operation { case sum, max, min }

    private func handle(_ op: Operation) -> MPILibrary.Handle {
        switch op { case .sum: return mpi.opSum; case .max: return mpi.opMax; case .min: return mpi.opMin }
    }

    /// MPI counts are 32-bit: large arrays go in pieces.
    static let chunk = 1 << 28

    /// Starts an in-place allreduce of `count` values of `stride` bytes at `p`, in pieces of at
    /// most `chunk` values.
    private func startInPlace(_ p: UnsafeMutableRawPointer, count: Int, type: MPILibrary.Handle, stride: Int,
                              op: MPILibrary.Handle, what: String) throws -> [Pending] {
        var pieces: [Pending] = []
        var offset = 0
        while offset < count {
            let n = min(Self.chunk, count - offset)
            let base = p + offset * stride
            pieces.append(try started(what) { mpi.iallreduce(UnsafeRawPointer(bitPattern: 1), base, Int32(n), type, op, comm, $0) })
            offset += n
        }
        return pieces
    }

    /// Starts an in-place sum of `count` floats at `p` (gradient buckets).
    func startAllreduce(_ p: UnsafeMutablePointer<Float>, count: Int, what: String) throws -> [Pending] {
        try startInPlace(p, count: count, type: mpi.float, stride: 4, op: mpi.opSum, what: what)
    }

    /// Starts an in-place sum of `count` IEEE half floats at `p` (fp16 gradient compression):
    /// MPI has no half type, so they travel as 16-bit integers summed by our own operation.
    func startAllreduceHalf(_ p: UnsafeMutablePointer<UInt16>, count: Int, what: String) throws -> [Pending] {
        try startInPlace(p, count: count, type: mpi.uint16, stride: 2, op: try halfSum(), what: what)
    }

    /// The half-float sum operation, created at first use (MPI_Op_create, commutative).
    private func halfSum() throws -> MPILibrary.Handle {
        if let halfSumOp { return halfSumOp }
        var op: MPILibrary.Handle?
        try check(mpi.opCreate(sumHalfFloats, 1, &op), "MPI_Op_create (fp16 sum)")
        halfSumOp = op
        return op!
    }

    private func allreduce(_ p: UnsafeMutableRawPointer, count: Int, type: MPILibrary.Handle, stride: Int, op: Operation, what: String) throws {
        try wait(try startInPlace(p, count: count, type: type, stride: stride, op: handle(op), what: what))
    }

    public func allreduce(_ values: inout [Double], _ op: Operation = .sum, what: String) throws {
        let n = values.count
        try values.withUnsafeMutableBytes { try allreduce($0.baseAddress!, count: n, type: mpi.double, stride: 8, op: op, what: what) }
    }

    public func allreduce(_ values: inout [Float], _ op: Operation = .sum, what: String) throws {
        let n = values.count
        try values.withUnsafeMutableBytes { try allreduce($0.baseAddress!, count: n, type: mpi.float, stride: 4, op: op, what: what) }
    }

    public func allreduce(_ values: inout [UInt64], _ op: Operation, what: String) throws {
        let n = values.count
        try values.withUnsafeMutableBytes { try allreduce($0.baseAddress!, count: n, type: mpi.uint64, stride: 8, op: op, what: what) }
    }

    /// Rank `root`'s values on every rank.
    public func broadcast(_ values: inout [Float], root: Int = 0, what: String) throws {
        let count = values.count
        try values.withUnsafeMutableBufferPointer { buffer in
            var pieces: [Pending] = []
            var offset = 0
            while offset < count {
                let n = min(Self.chunk, count - offset)
                let base = buffer.baseAddress! + offset
                pieces.append(try started(what) { mpi.ibcast(base, Int32(n), mpi.float, Int32(root), comm, $0) })
                offset += n
            }
            try wait(pieces)
        }
    }

    /// Every rank's `values` (all the same length), rank by rank.
    public func allgather(_ values: [UInt64], what: String) throws -> [[UInt64]] {
        var out = [UInt64](repeating: 0, count: values.count * size)
        try values.withUnsafeBytes { mine in
            try out.withUnsafeMutableBytes { all in
                let p = try started(what) { mpi.iallgather(mine.baseAddress, Int32(values.count), mpi.uint64, all.baseAddress, Int32(values.count), mpi.uint64, comm, $0) }
                try wait(p)
            }
        }
        return (0..<size).map { Array(out[($0 * values.count)..<(($0 + 1) * values.count)]) }
    }

    /// Every rank's string (up to 1 KiB each).
    public func allgatherStrings(_ text: String, what: String) throws -> [String] {
        let width = 1024 / 8
        var bytes = Array(text.utf8.prefix(1023))
        bytes += [UInt8](repeating: 0, count: width * 8 - bytes.count)
        let words = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        return try allgather(words, what: what).map { w in
            let b = w.withUnsafeBytes { Array($0) }
            return String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public func barrier(what: String) throws {
        try wait(try started(what) { mpi.ibarrier(comm, $0) })
    }

    /// Every rank's bytes, in rank order, on `root` (nil elsewhere): point-to-point in pieces, so
    /// results larger than 2 GiB (features of a big dataset) pass.
    public func gather(_ bytes: [UInt8], root: Int = 0, what: String) throws -> [[UInt8]]? {
        let sizes = try allgather([UInt64(bytes.count)], what: "\(what) (sizes)").map { Int($0[0]) }
        let piece = 1 << 30
        if rank != root {
            try bytes.withUnsafeBytes { b in
                var pending: [Pending] = []
                var offset = 0
                while offset < bytes.count {
                    let n = min(piece, bytes.count - offset)
                    let base = b.baseAddress! + offset
                    pending.append(try started(what) { mpi.isend(base, Int32(n), mpi.byte, Int32(root), Self.gatherTag, comm, $0) })
                    offset += n
                }
                try wait(pending)
            }
            return nil
        }
        var out: [[UInt8]] = sizes.map { [UInt8](repeating: 0, count: $0) }
        out[root] = bytes
        for r in 0..<size where r != root {
            try out[r].withUnsafeMutableBytes { b in
                var pending: [Pending] = []
                var offset = 0
                while offset < sizes[r] {
                    let n = min(piece, sizes[r] - offset)
                    let base = b.baseAddress! + offset
                    pending.append(try started("\(what) from \(describe(rank: r))") { mpi.irecv(base, Int32(n), mpi.byte, Int32(r), Self.gatherTag, comm, $0) })
                    offset += n
                }
                try wait(pending)
            }
        }
        return out
    }

    // MARK: - Ending

    /// Ends every rank of the job now (after an error on this one) with `code`.
    public func abort(_ code: Int32) -> Never {
        flushStandardOutput()
        _ = mpi.abort(comm, code)
        exit(code)
    }

    /// MPI_Finalize, once; the hang probe receive is cancelled first.
    public func finalize() {
        guard !finished else { return }
        finished = true
        diagnostics.close()
        if halfSumOp != nil { _ = mpi.opFree(&halfSumOp) }
        _ = mpi.finalize()
    }

    // MARK: - Hang reports

    /// Each rank keeps a receive posted for hang probes and answers them whenever it waits, so a
    /// rank that timed out can tell the ranks that also wait (alive) from the one that does not
    /// answer (hung or dead), and which collective each is in.
    final class Diagnostics {
        unowned let c: Communicator
        private let probe = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
        private let status = UnsafeMutableRawPointer.allocate(byteCount: MPILibrary.statusBytes, alignment: 8)
        private var request: MPILibrary.Request = nil
        static let replyBytes = 256
        /// Buffers of replies in flight (MPI needs them until the send completes).
        private var sends: [(MPILibrary.Request, UnsafeMutableRawPointer)] = []

        init(_ c: Communicator) throws {
            self.c = c
            try post()
        }

        private func post() throws {
            try c.check(c.mpi.irecv(probe, 1, c.mpi.uint64, -1 /* MPI_ANY_SOURCE */, Communicator.probeTag, c.comm, &request), "MPI_Irecv (hang probe)")
        }

        /// Answers a pending probe with what this rank is waiting for.
        func serve() throws {
            var flag: Int32 = 0
            try c.check(c.mpi.test(&request, &flag, status), "MPI_Test (hang probe)")
            if flag != 0 {
                let source = status.load(as: Int32.self)
                let text = c.waitingFor
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.replyBytes, alignment: 8)
                buffer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.replyBytes)
                for (i, b) in text.utf8.prefix(Self.replyBytes - 1).enumerated() { buffer.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
                var r: MPILibrary.Request = nil
                try c.check(c.mpi.isend(buffer, Int32(Self.replyBytes), c.mpi.byte, source, Communicator.replyTag, c.comm, &r), "MPI_Isend (hang reply)")
                sends.append((r, buffer))
                try post()
            }
            // Free the buffers of replies that went out.
            sends = try sends.filter { entry in
                var r = entry.0, done: Int32 = 0
                try c.check(c.mpi.test(&r, &done, nil), "MPI_Test (hang reply)")
                if done != 0 { entry.1.deallocate(); return false }
                return true
            }
        }

        /// Probes every other rank for a few seconds, then says who did not answer (hung or
        /// dead) and where the others wait.
        func hangReport(waitingFor pending: Pending) throws -> VGGTLError {
            let grace = min(10.0, max(2.0, c.timeout / 4))
            let others = (0..<c.size).filter { $0 != c.rank }
            let out = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
            out.pointee = Int64(c.sequence)
            var replies: [Int: UnsafeMutableRawPointer] = [:], requests: [Int: MPILibrary.Request] = [:]
            for r in others {
                var s: MPILibrary.Request = nil
                _ = c.mpi.isend(out, 1, c.mpi.uint64, Int32(r), Communicator.probeTag, c.comm, &s)
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.replyBytes, alignment: 8)
                var q: MPILibrary.Request = nil
                _ = c.mpi.irecv(buffer, Int32(Self.replyBytes), c.mpi.byte, Int32(r), Communicator.replyTag, c.comm, &q)
                replies[r] = buffer; requests[r] = q
            }
            var answered: [Int: String] = [:]
            let t0 = Date()
            while answered.count < others.count && Date().timeIntervalSince(t0) < grace {
                for r in others where answered[r] == nil {
                    var q = requests[r]!, flag: Int32 = 0
                    if c.mpi.test(&q, &flag, nil) == 0, flag != 0 {
                        let bytes = UnsafeRawBufferPointer(start: replies[r]!, count: Self.replyBytes)
                        answered[r] = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    requests[r] = q
                }
                try? serve()
                usleep(2000)
            }
            let silent = others.filter { answered[$0] == nil }
            let limit = "\(Int(c.timeout)) s (\(c.settingName(.stepTimeout)))"
            var text: String
            if !silent.isEmpty {
                text = "\(silent.map { c.describe(rank: $0) }.joined(separator: ", ")) did not join \(pending.what) within \(limit) "
                    + "and \(silent.count == 1 ? "does" : "do") not answer: \(silent.count == 1 ? "it" : "they") hung or died"
            } else {
                text = "\(pending.what) did not complete within \(limit), although every rank answers"
            }
            let elsewhere = answered.sorted { $0.key < $1.key }.compactMap { r, reply -> String? in
                reply == c.waitingFor ? nil : "rank \(r) is at \(reply)"
            }
            if !elsewhere.isEmpty { text += "; " + elsewhere.joined(separator: "; ") }
            return c.fail(text + "; ending the job")
        }

        func close() {
            var flag: Int32 = 0
            _ = c.mpi.cancel(&request)
            for _ in 0..<1000 {
                if c.mpi.test(&request, &flag, nil) != 0 || flag != 0 { break }
                usleep(1000)
            }
        }
    }
}

/// inout[i] = in[i] + inout[i] on IEEE half floats, summed in float and rounded once per add
/// (what fp16 gradient compression costs in precision; an overflow becomes inf and is caught).
private let sumHalfFloats: MPILibrary.UserFunction = { input, accumulated, length, _ in
    guard let input, let accumulated, let length else { return }
    vggtl_half_sum(input.assumingMemoryBound(to: UInt16.self), accumulated.assumingMemoryBound(to: UInt16.self), Int(length.pointee))
}

import Foundation
import VGGTLTensors

/// Open MPI, loaded at run time like OpenBLAS: the one vggtl binary runs where MPI is not
/// installed, and only a process started by `mpirun` ever loads it. Handles are Open MPI's
/// (pointers to its predefined objects, `&ompi_mpi_comm_world` ...), so this is Open MPI's ABI
/// (libmpi.so.40, Debian's `libopenmpi3`), not MPICH's.
final class MPILibrary {
    typealias Handle = OpaquePointer
    typealias Request = OpaquePointer?
    typealias InitThreadFn = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    typealias FinalizeFn = @convention(c) () -> Int32
    typealias CommRankFn = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias CommSizeFn = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias CommSetErrhandlerFn = @convention(c) (Handle, Handle) -> Int32
    typealias ErrorStringFn = @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    typealias IallreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias IbcastFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias IallgatherFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias IbarrierFn = @convention(c) (Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias IsendFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias IrecvFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Int32, Handle, UnsafeMutablePointer<Request>) -> Int32
    typealias TestFn = @convention(c) (UnsafeMutablePointer<Request>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    typealias CancelFn = @convention(c) (UnsafeMutablePointer<Request>) -> Int32
    typealias RequestFreeFn = @convention(c) (UnsafeMutablePointer<Request>) -> Int32
    typealias AbortFn = @convention(c) (Handle, Int32) -> Int32
    typealias ProcessorNameFn = @convention(c) (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    typealias LibraryVersionFn = @convention(c) (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    /// MPI_User_function(invec, inoutvec, len, datatype): inoutvec[i] = invec[i] op inoutvec[i].
    typealias UserFunction = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Handle?>?) -> Void
    typealias OpCreateFn = @convention(c) (UserFunction, Int32, UnsafeMutablePointer<Handle?>) -> Int32
    typealias OpFreeFn = @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32

    // The functions vggtl calls; every one returns an MPI error code (0: success).
    let initThread: InitThreadFn
    let finalize: FinalizeFn
    let commRank: CommRankFn
    let commSize: CommSizeFn
    let commSetErrhandler: CommSetErrhandlerFn
    let errorString: ErrorStringFn
    let iallreduce: IallreduceFn
    let ibcast: IbcastFn
    let iallgather: IallgatherFn
    let ibarrier: IbarrierFn
    let isend: IsendFn
    let irecv: IrecvFn
    /// MPI_Test(request, flag, status): status is MPI_Status* (24 bytes in Open MPI; we pass a buffer).
    let test: TestFn
    let cancel: CancelFn
    let requestFree: RequestFreeFn
    let abort: AbortFn
    let processorName: ProcessorNameFn
    let libraryVersion: LibraryVersionFn
    let opCreate: OpCreateFn
    let opFree: OpFreeFn

    // Open MPI's predefined objects.
    let commWorld: Handle, float: Handle, double: Handle, uint64: Handle, uint16: Handle, byte: Handle
    let opSum: Handle, opMax: Handle, opMin: Handle, errorsReturn: Handle
    /// Which file was loaded, for `vggtl devices`.
    let path: String

    /// Open MPI's MPI_Status is 24 bytes; MPI_STATUS_IGNORE is a null pointer.
    static let statusBytes = 24
    static let threadFunneled: Int32 = 1

    static let candidates = ["libmpi.so.40", "libmpi.so"]

    /// Loads Open MPI: `path` first when given (the CLI's VGGTL_MPI_LIBRARY), then the usual names.
    init(path explicitPath: String? = nil) throws {
        var handle: UnsafeMutableRawPointer?
        var tried: [String] = []
        // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so) resolve libmpi's symbols through it.
        let explicit = explicitPath.map { [$0] } ?? []
        var loaded = ""
        for name in explicit + Self.candidates {
            if let h = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { handle = h; loaded = name; break }
            tried.append("\(name): \(String(cString: dlerror()))")
        }
        guard let handle else {
            throw VGGTLError.library(name: "MPI", reason: "Open MPI's libmpi.so.40 could not be loaded (\(tried.joined(separator: "; "))); "
                + "install it with: apt-get install openmpi-bin libopenmpi-dev (or set VGGTL_MPI_LIBRARY to its path)")
        }
        path = loaded
        func symbol<T>(_ name: String, as: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw VGGTLError.library(name: "MPI", reason: "\(loaded) has no \(name): vggtl needs Open MPI 4 or later (libmpi.so.40), not another MPI")
            }
            return unsafeBitCast(p, to: T.self)
        }
        func object(_ name: String) throws -> Handle {
            guard let p = dlsym(handle, name) else {
                throw VGGTLError.library(name: "MPI", reason: "\(loaded) has no \(name): vggtl speaks Open MPI's ABI (libmpi.so.40); MPICH and others are not supported")
            }
            return OpaquePointer(p)
        }
        initThread = try symbol("MPI_Init_thread", as: InitThreadFn.self)
        finalize = try symbol("MPI_Finalize", as: FinalizeFn.self)
        commRank = try symbol("MPI_Comm_rank", as: CommRankFn.self)
        commSize = try symbol("MPI_Comm_size", as: CommSizeFn.self)
        commSetErrhandler = try symbol("MPI_Comm_set_errhandler", as: CommSetErrhandlerFn.self)
        errorString = try symbol("MPI_Error_string", as: ErrorStringFn.self)
        iallreduce = try symbol("MPI_Iallreduce", as: IallreduceFn.self)
        ibcast = try symbol("MPI_Ibcast", as: IbcastFn.self)
        iallgather = try symbol("MPI_Iallgather", as: IallgatherFn.self)
        ibarrier = try symbol("MPI_Ibarrier", as: IbarrierFn.self)
        isend = try symbol("MPI_Isend", as: IsendFn.self)
        irecv = try symbol("MPI_Irecv", as: IrecvFn.self)
        test = try symbol("MPI_Test", as: TestFn.self)
        cancel = try symbol("MPI_Cancel", as: CancelFn.self)
        requestFree = try symbol("MPI_Request_free", as: RequestFreeFn.self)
        abort = try symbol("MPI_Abort", as: AbortFn.self)
        processorName = try symbol("MPI_Get_processor_name", as: ProcessorNameFn.self)
        libraryVersion = try symbol("MPI_Get_library_version", as: LibraryVersionFn.self)
        opCreate = try symbol("MPI_Op_create", as: OpCreateFn.self)
        opFree = try symbol("MPI_Op_free", as: OpFreeFn.self)
        commWorld = try object("ompi_mpi_comm_world")
        float = try object("ompi_mpi_float")
        double = try object("ompi_mpi_double")
        uint64 = try object("ompi_mpi_uint64_t")
        uint16 = try object("ompi_mpi_uint16_t")
        byte = try object("ompi_mpi_byte")
        opSum = try object("ompi_mpi_op_sum")
        opMax = try object("ompi_mpi_op_max")
        opMin = try object("ompi_mpi_op_min")
        errorsReturn = try object("ompi_mpi_errors_return")
    }

    /// MPI_Error_string of a code.
    func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        var length: Int32 = 0
        guard errorString(code, &buffer, &length) == 0 else { return "MPI error \(code)" }
        return String(cString: buffer)
    }

    var version: String {
        var buffer = [CChar](repeating: 0, count: 8192)
        var length: Int32 = 0
        guard libraryVersion(&buffer, &length) == 0 else { return "unknown MPI" }
        // "Open MPI v4.1.4, package: Debian OpenMPI, ident: ...": the first part.
        return String(cString: buffer).split(separator: ",").first.map(String.init) ?? "unknown MPI"
    }
}

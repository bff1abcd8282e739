import Foundation
import VGGTLTensors

/// OpenBLAS, loaded at run time so that vggtl chooses its kernels before the library's
/// constructor does. Debian's DYNAMIC_ARCH build identifies some AVX-512 Xeons (virtualised
/// ones report a bare "Intel Xeon Processor" model) as "Prescott" and runs SSE3 kernels at a
/// fifth of the speed; OpenBLAS reads OPENBLAS_CORETYPE only while it loads, so we set it from
/// the CPU's feature flags first, unless the user has chosen (`CPUDevice.Options.openblasCoreType`).
final class OpenBLAS {
    typealias SgemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                        Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    let sgemm: SgemmFn
    private let setThreads: @convention(c) (Int32) -> Void
    /// The kernel family OpenBLAS runs, e.g. "SkylakeX".
    let coreName: String
    /// Why those kernels: chosen by vggtl, set by the user, or OpenBLAS's own detection.
    let coreSource: String

    private static let loadLock = NSLock()
    /// Safe although mutable and static: read and written only with `loadLock` held.
    nonisolated(unsafe) private static var loaded: Result<OpenBLAS, VGGTLError>?

    /// The process's OpenBLAS, loaded on first use with `coreType` (the user's choice of
    /// kernels, nil: vggtl's). It loads once: later calls get the first one whatever they pass.
    static func shared(coreType: String?) throws -> OpenBLAS {
        loadLock.lock(); defer { loadLock.unlock() }
        if let loaded { return try loaded.get() }
        let result = Result { try OpenBLAS(coreType: coreType) }.mapError {
            ($0 as? VGGTLError) ?? .library(name: "OpenBLAS", reason: "\($0)")
        }
        loaded = result
        return try result.get()
    }

    private init(coreType: String?) throws {
        var source = "detected by OpenBLAS"
        if let user = coreType, !user.isEmpty {
            setenv("OPENBLAS_CORETYPE", user, 1)
            source = "OPENBLAS_CORETYPE=\(user) from the environment"
        } else if let core = OpenBLAS.bestCoreType(flags: CPUInfo.flags) {
            // Not over a value already set: a library user's OPENBLAS_CORETYPE that did not
            // come in as an option still decides, as OpenBLAS itself would let it.
            setenv("OPENBLAS_CORETYPE", core, 0)
            source = "chosen by vggtl from the CPU flags"
        }
        guard let handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL) ?? dlopen("libopenblas.so", RTLD_NOW | RTLD_GLOBAL) else {
            throw VGGTLError.library(name: "OpenBLAS", reason: "libopenblas.so.0 not found; install it with: apt-get install libopenblas0-pthread")
        }
        func symbol<T>(_ name: String, as: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw VGGTLError.library(name: "OpenBLAS", reason: "symbol \(name) missing")
            }
            return unsafeBitCast(p, to: T.self)
        }
        sgemm = try symbol("cblas_sgemm", as: SgemmFn.self)
        setThreads = try symbol("openblas_set_num_threads", as: (@convention(c) (Int32) -> Void).self)
        let corename = try symbol("openblas_get_corename", as: (@convention(c) () -> UnsafePointer<CChar>?).self)
        coreName = corename().map { String(cString: $0) } ?? "unknown"
        coreSource = source
    }

    func setThreadCount(_ n: Int) { setThreads(Int32(max(1, n))) }

    /// The OpenBLAS core type whose SGEMM kernels fit these CPU flags, or nil to let it decide.
    static func bestCoreType(flags: Set<String>) -> String? {
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }
}

public enum CPUInfo {
    /// Feature flags of the first CPU in /proc/cpuinfo (empty where that file does not exist).
    public static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()

    public static let modelName: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown CPU" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }()
}

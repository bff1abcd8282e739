import Foundation
import COpenCL
import VGGTLTensors

/// Compiled OpenCL program binaries on disk, one file per (device, driver, source, options),
/// in the folder `OpenCLDevice.Options.kernelCache` names. The cache is best effort: an
/// unreadable or unwritable directory only costs a rebuild.
struct KernelCache {
    let directory: URL

    func url(for key: String) -> URL { directory.appendingPathComponent(key + ".bin") }

    func load(_ key: String) -> [UInt8]? {
        guard let data = try? Data(contentsOf: url(for: key)), !data.isEmpty else { return nil }
        return [UInt8](data)
    }

    /// Writes atomically: a temporary file in the same directory, then rename(2), so a reader
    /// never sees a partial binary even when two processes build at once.
    func store(_ bytes: [UInt8], key: String) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            let temp = directory.appendingPathComponent(".\(key).\(getpid()).\(UInt32.random(in: 0 ... .max)).tmp")
            try Data(bytes).write(to: temp)
            if rename(temp.path, url(for: key).path) != 0 { try? fm.removeItem(at: temp) }
        } catch {
            // Best effort: the next run compiles again.
        }
    }

    /// A 128-bit key (two 64-bit FNV-1a hashes with different offset bases) of the given parts,
    /// as 32 hex digits. Parts are separated by a NUL so ("ab", "c") and ("a", "bc") differ.
    static func key(_ parts: [String]) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325, h2: UInt64 = 0x6c62_272e_07bb_0142
        let prime: UInt64 = 0x0000_0100_0000_01b3
        for part in parts {
            for byte in part.utf8 + [0] {
                h1 = (h1 ^ UInt64(byte)) &* prime
                h2 = (h2 ^ UInt64(byte ^ 0x5a)) &* prime
            }
        }
        return hex(h1) + hex(h2)
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Builds the programs of one device from Kernels/*.cl sources, through the binary cache.
struct ProgramBuilder {
    let queue: OpenCLQueue
    /// The device as error messages name it.
    let deviceName: String
    /// Platform, device and driver identity: part of every cache key.
    let identity: [String]
    let cache: KernelCache?
    let options: String

    /// Returns a built program for `file`; `cached` tells whether it came from the disk cache.
    func build(file: String, source: String) throws -> (program: cl_program, cached: Bool) {
        let key = KernelCache.key(["vggtl-kernel-cache-1"] + identity + [options, file, source])
        if let cache, let binary = cache.load(key), let program = fromBinary(binary) {
            return (program, true)
        }
        let program = try fromSource(file: file, source: source)
        if let cache, let binary = binary(of: program) { cache.store(binary, key: key) }
        return (program, false)
    }

    /// nil when the driver rejects the binary (another driver build, a corrupt file): the
    /// caller then compiles from source.
    private func fromBinary(_ binary: [UInt8]) -> cl_program? {
        var device: cl_device_id? = queue.device
        var length = binary.count
        var status: cl_int = 0, code: cl_int = 0
        let program: cl_program? = binary.withUnsafeBufferPointer { bytes in
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress
            return clCreateProgramWithBinary(queue.context, 1, &device, &length, &pointer, &status, &code)
        }
        guard let program, code == CL_SUCCESS, status == CL_SUCCESS else {
            if let program { clReleaseProgram(program) }
            return nil
        }
        guard clBuildProgram(program, 1, &device, options, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    private func fromSource(file: String, source: String) throws -> cl_program {
        var code: cl_int = 0
        let created: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(queue.context, 1, &pointer, nil, &code)
        }
        guard let program = created, code == CL_SUCCESS else {
            throw VGGTLError.openCL(call: "clCreateProgramWithSource(\(file))", code: code, device: deviceName)
        }
        var device: cl_device_id? = queue.device
        let status = clBuildProgram(program, 1, &device, options, nil, nil)
        if status != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            throw VGGTLError.kernelBuild(
                file: "Kernels/\(file)", device: deviceName,
                log: log.isEmpty ? "clBuildProgram returned \(status) (\(openCLErrorName(status))) and no log" : log)
        }
        return program
    }

    private func buildLog(_ program: cl_program) -> String {
        OpenCLRuntime.infoString {
            clGetProgramBuildInfo(program, queue.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
        }
    }

    /// The device binary of a built program, or nil if the driver will not hand one out.
    private func binary(of program: cl_program) -> [UInt8]? {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil)
                == CL_SUCCESS, size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let code: cl_int = bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES),
                                    MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil)
        }
        return code == CL_SUCCESS ? bytes : nil
    }
}

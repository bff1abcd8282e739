import Foundation
import COpenCL
import CCLBlast

/// How an OpenCL device runs convolutions: read from the environment when the device opens.
struct OpenCLConvolutionOptions: Sendable, Equatable {
    enum Family: String, Sendable { case auto, implicit, winograd2, winograd4, im2col, clblast }

    /// `VGGTL_OCL_CONV`: restricts the candidates to one family where it applies (auto: all).
    var family: Family = .auto
    /// `VGGTL_OCL_AUTOTUNE=1|0`: time the candidates at first use and keep the fastest (default:
    /// on for GPUs and accelerators, off for OpenCL on a CPU, where speed says nothing about a GPU).
    var autotune: Bool
    /// `VGGTL_OCL_TILE=128x64x16/8x4`: one tile shape instead of the device table's.
    var tile: ConvTile?
    /// `VGGTL_OCL_WORKSPACE_MB`: the most device memory one pass's workspace may take.
    var workspaceBytes: Int
    /// Work-groups per compute unit that split reductions (split-K, the Winograd kernel
    /// gradient) aim for: 4 on GPUs, 2 on CPU devices.
    var workGroupsPerUnit: Int
    /// `VGGTL_CLBLAST_XGEMM=MWG=128,NWG=128,...`: CLBlast Xgemm parameters for this device
    /// (`CLBlastOverrideParameters`, as printed by clblast_tuner_xgemm).
    var clblastXgemm: [(String, Int)] = []

    static func == (a: Self, b: Self) -> Bool {
        a.family == b.family && a.autotune == b.autotune && a.tile == b.tile && a.workspaceBytes == b.workspaceBytes
            && a.workGroupsPerUnit == b.workGroupsPerUnit
            && a.clblastXgemm.elementsEqual(b.clblastXgemm, by: { $0 == $1 })
    }

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment,
                                type: OpenCLDeviceType, maxAllocationBytes: Int) -> OpenCLConvolutionOptions {
        var o = OpenCLConvolutionOptions(autotune: type != .cpu, workspaceBytes: min(maxAllocationBytes, 128 << 20),
                                         workGroupsPerUnit: type == .cpu ? 2 : 4)
        if let v = env["VGGTL_OCL_CONV"].flatMap(Family.init(rawValue:)) { o.family = v }
        if let v = env["VGGTL_OCL_AUTOTUNE"] { o.autotune = v == "1" || v == "on" || v == "yes" }
        if let v = env["VGGTL_OCL_TILE"] { o.tile = ConvTile(v) }
        if let v = env["VGGTL_OCL_WORKSPACE_MB"].flatMap(Int.init), v > 0 {
            o.workspaceBytes = min(maxAllocationBytes, v << 20)
        }
        if let v = env["VGGTL_CLBLAST_XGEMM"] {
            o.clblastXgemm = v.split(separator: ",").compactMap { item in
                let kv = item.split(separator: "=")
                guard kv.count == 2, let value = Int(kv[1]) else { return nil }
                return (String(kv[0]).trimmingCharacters(in: .whitespaces), value)
            }
        }
        return o
    }
}

/// The geometry-specialised convolution kernels of one OpenCL device (Kernels/conv/*.cl, each
/// program built with its geometry and tile shape as -D constants, through the device's binary
/// cache), the workspace they share, and the tuning choices of the convolution plans.
final class OpenCLConvolutionKernels {
    unowned let device: OpenCLDevice
    /// Read from the environment when the device opens; tests change them.
    var options: OpenCLConvolutionOptions
    let deviceClass: OpenCLDeviceClass
    /// The candidate tile shapes for this device (the table's entry, or the one forced by options),
    /// those that fit the device's work-group and local-memory limits.
    var tiles: [ConvTile]
    var tuningCache: ConvolutionTuningCache?
    private let localMemoryBytes: Int
    private var programs: [String: (program: cl_program, kernels: [String: CLKernel])] = [:]
    private var workspace: [CLBuffer?] = [nil, nil, nil, nil]
    private let lock = NSLock()

    init(device: OpenCLDevice) {
        self.device = device
        options = OpenCLConvolutionOptions.fromEnvironment(type: device.info.type, maxAllocationBytes: device.info.maxAllocationBytes)
        let id = device.cl.device
        let vendor = OpenCLRuntime.deviceString(id, CL_DEVICE_VENDOR)
        var architecture = ""
        if vendor.range(of: "NVIDIA", options: .caseInsensitive) != nil {
            // cl_nv_device_attribute_query: CL_DEVICE_COMPUTE_CAPABILITY_MAJOR/MINOR_NV.
            let major: cl_uint = OpenCLRuntime.deviceValue(id, 0x4000), minor: cl_uint = OpenCLRuntime.deviceValue(id, 0x4001)
            if major > 0 { architecture = "SM\(major).\(minor)" }
        } else if vendor.range(of: "Advanced Micro Devices", options: .caseInsensitive) != nil {
            architecture = device.info.name
        }
        deviceClass = OpenCLDeviceClass(vendor: vendor, architecture: architecture, device: device.info.name, type: device.info.type)
        localMemoryBytes = Int(OpenCLRuntime.deviceValue(id, CL_DEVICE_LOCAL_MEM_SIZE) as cl_ulong)
        let maxThreads = device.info.maxWorkGroupSize, local = localMemoryBytes
        let candidates = options.tile.map { [$0] } ?? ConvTileTable.tiles(for: deviceClass)
        tiles = candidates.filter { $0.fitsRowStaging && $0.threads <= maxThreads && $0.localBytes <= local }
        tuningCache = device.kernelCache.map {
            ConvolutionTuningCache(directory: $0.directory.appendingPathComponent("tuning", isDirectory: true),
                                   identity: device.programIdentity)
        }
        applyCLBlastOverrides()
    }

    deinit {
        for (_, p) in programs {
            p.kernels.values.forEach { clReleaseKernel($0.kernel) }
            clReleaseProgram(p.program)
        }
    }

    /// "vendor / architecture": what `bench --layers` and the tuning notes print.
    var deviceClassDescription: String {
        [deviceClass.vendor, deviceClass.architecture].filter { !$0.isEmpty }.joined(separator: " / ")
    }

    private func applyCLBlastOverrides() {
        guard !options.clblastXgemm.isEmpty else { return }
        let names = options.clblastXgemm.map { strdup($0.0) }
        defer { names.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = names.map { UnsafePointer($0) }
        let values = options.clblastXgemm.map { $0.1 }
        let status = pointers.withUnsafeMutableBufferPointer { p in
            values.withUnsafeBufferPointer { v in
                CLBlastOverrideParameters(device.cl.device, "Xgemm", CLBlastPrecisionSingle, names.count, p.baseAddress, v.baseAddress)
            }
        }
        if status != CLBlastSuccess {
            FileHandle.standardError.write(Data("warning: \(device.name): VGGTL_CLBLAST_XGEMM was not accepted by CLBlast (status \(status.rawValue)); using its defaults\n".utf8))
        }
    }

    /// Kernel `name` of Kernels/`file` built with `defines` (geometry and tile shape), built
    /// on first use and kept for the device's lifetime (and on disk in the kernel cache).
    func kernel(_ name: String, file: String, defines: [(String, Int)]) throws -> CLKernel {
        let options = "-cl-std=CL1.2 " + defines.map { "-D\($0.0)=\($0.1)" }.joined(separator: " ")
        let key = file + " " + options
        lock.lock(); defer { lock.unlock() }
        if let p = programs[key] {
            guard let k = p.kernels[name] else { throw missing(name, file) }
            return k
        }
        guard let body = embeddedKernelSources[file] else {
            throw VGGTLError.kernelBuild(file: "Kernels/\(file)", device: device.name, log: "not among the embedded kernel sources")
        }
        // Kernels/*.h and the headers of the file's own folder come first.
        let folder = file.split(separator: "/").dropLast().joined(separator: "/")
        let headers = embeddedKernelSources.keys.filter { key in
            let keyFolder = key.split(separator: "/").dropLast().joined(separator: "/")
            return key.hasSuffix(".h") && (keyFolder.isEmpty || keyFolder == folder)
        }.sorted().map { embeddedKernelSources[$0]! }.joined(separator: "\n")
        let builder = ProgramBuilder(queue: device.cl, deviceName: device.name, identity: device.programIdentity,
                                     cache: device.kernelCache, options: options)
        let program = try builder.build(file: file, source: headers + "\n#line 1\n" + body).program
        let created: [CLKernel]
        do { created = try createKernels(in: program, device: device.cl.device, deviceName: device.name) } catch {
            clReleaseProgram(program)
            throw error
        }
        let byName = Dictionary(created.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        programs[key] = (program, byName)
        guard let k = byName[name] else { throw missing(name, file) }
        return k
    }

    private func missing(_ name: String, _ file: String) -> VGGTLError {
        .kernelBuild(file: "Kernels/\(file)", device: device.name, log: "no kernel named '\(name)'")
    }

    /// Programs built so far (tests and diagnostics).
    var programCount: Int { lock.lock(); defer { lock.unlock() }; return programs.count }

    /// Workspace slot `slot` (0...3) with room for `floats`, grown on demand and reused: the
    /// device's queue is in order, so passes can share it.
    enum Slot: Int { case a = 0, b, kernel, bias }
    func workspace(_ slot: Slot, floats: Int) throws -> CLBuffer {
        lock.lock(); defer { lock.unlock() }
        if let b = workspace[slot.rawValue], b.count >= floats { return b }
        workspace[slot.rawValue] = nil
        let b = try device.allocate(max(floats, 1024), what: "convolution workspace") as! CLBuffer
        workspace[slot.rawValue] = b
        return b
    }

    /// Floats one workspace slot may hold.
    var workspaceFloats: Int { options.workspaceBytes / 4 }
}

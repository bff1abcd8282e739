import Foundation
import COpenCL
import CCLBlast
import VGGTLTensors

/// What an OpenCL device's convolution plans use, resolved from `OpenCLDevice.Options` and the
/// device when it opens (tests change it).
struct OpenCLConvolutionOptions: Sendable, Equatable {
    typealias Family = OpenCLDevice.ConvolutionFamily
    var family: Family
    var autotune: Bool
    /// The most memory one workspace slot may take (at most the device's largest allocation).
    var workspaceBytes: Int
    /// Work-groups per compute unit that split reductions (split-K, the Winograd kernel
    /// gradient) aim for: 4 on GPUs, 2 on CPU devices.
    var workGroupsPerUnit: Int

    init(_ o: OpenCLDevice.Options, type: OpenCLDeviceType, maxAllocationBytes: Int) {
        family = o.convolution
        autotune = o.autotune ?? (type != .cpu)
        workspaceBytes = min(maxAllocationBytes, o.workspaceBytes)
        workGroupsPerUnit = type == .cpu ? 2 : 4
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
    /// What the autotune chose (or read back from its cache) per pass and geometry, for the
    /// tuning table's entry (TuningReport.swift).
    private var tuned: [String: TunedChoice] = [:]
    private let localMemoryBytes: Int
    private var programs: [String: (program: cl_program, kernels: [String: CLKernel])] = [:]
    private var workspace: [CLBuffer?] = [nil, nil, nil, nil]
    private let lock = NSLock()

    init(device: OpenCLDevice) {
        self.device = device
        options = OpenCLConvolutionOptions(device.options, type: device.info.type, maxAllocationBytes: device.info.maxAllocationBytes)
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
        let candidates = device.options.tile.flatMap(ConvTile.init).map { [$0] } ?? ConvTileTable.tiles(for: deviceClass)
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

    private func applyCLBlastOverrides() {
        let params = device.options.clblastXgemm.sorted { $0.key < $1.key }
        guard !params.isEmpty else { return }
        let names = params.map { strdup($0.key) }
        defer { names.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = names.map { UnsafePointer($0) }
        let values = params.map(\.value)
        let status = pointers.withUnsafeMutableBufferPointer { p in
            values.withUnsafeBufferPointer { v in
                CLBlastOverrideParameters(device.cl.device, "Xgemm", CLBlastPrecisionSingle, names.count, p.baseAddress, v.baseAddress)
            }
        }
        if status != CLBlastSuccess {
            FileHandle.standardError.write(Data("warning: \(device.name): CLBlast did not accept VGGTL_CLBLAST_XGEMM (status \(status.rawValue)); it keeps its own Xgemm parameters\n".utf8))
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

    /// A GEMM kernel specialised for `tile` (its shape as -D constants too), checked to allow
    /// work-groups of the tile's size on this driver.
    func kernel(_ name: String, file: String, defines: [(String, Int)], tile t: ConvTile) throws -> CLKernel {
        let k = try kernel(name, file: file, defines: defines + t.defines)
        guard k.maxWorkGroupSize >= t.threads else {
            throw VGGTLError.kernelBuild(file: "Kernels/\(file)", device: device.name,
                                         log: "\(name) with tile \(t) needs work-groups of \(t.threads) but the driver allows \(k.maxWorkGroupSize)")
        }
        return k
    }

    private func missing(_ name: String, _ file: String) -> VGGTLError {
        .kernelBuild(file: "Kernels/\(file)", device: device.name, log: "no kernel named '\(name)'")
    }

    /// Workspace slot `slot` with room for `floats`, grown on demand and reused: the device's
    /// queue is in order, so passes can share it. Slot a is `OpenCLDevice.workspace`.
    enum Slot: Int { case a = 0, b, kernel, bias }
    func workspace(_ slot: Slot, floats: Int) throws -> CLBuffer {
        // Slot a is the device's own workspace, which the generic im2col path uses too.
        if slot == .a { return device.mem(try device.workspace.get(floats, on: device)) }
        lock.lock(); defer { lock.unlock() }
        if let b = workspace[slot.rawValue], b.count >= floats { return b }
        workspace[slot.rawValue] = nil
        let b = try device.allocate(max(floats, 1024), what: "convolution workspace") as! CLBuffer
        workspace[slot.rawValue] = b
        return b
    }

    func recordTuned(_ pass: ConvPass, _ g: WindowGeometry, _ choice: TunedChoice) {
        lock.lock(); defer { lock.unlock() }
        tuned["\(pass.rawValue) \(g)"] = choice
    }

    var tunedChoices: [String: TunedChoice] {
        lock.lock(); defer { lock.unlock() }
        return tuned
    }

    /// Floats one workspace slot may hold.
    var workspaceFloats: Int { options.workspaceBytes / 4 }
}

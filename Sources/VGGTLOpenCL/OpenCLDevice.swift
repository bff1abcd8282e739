import Foundation
import COpenCL
import CCLBlast
import VGGTLTensors

/// Device memory of one OpenCL device: a cl_mem released when the buffer goes away.
/// (OpenCL keeps the memory alive until queued commands that use it have finished.)
final class CLBuffer: DeviceBuffer, KernelArgument {
    let count: Int
    let mem: cl_mem
    let context: cl_context
    let what: String

    init(mem: cl_mem, count: Int, context: cl_context, what: String) {
        self.mem = mem; self.count = count; self.context = context; self.what = what
    }

    deinit { clReleaseMemObject(mem) }

    func set(on kernel: cl_kernel, index: cl_uint) -> cl_int {
        var m: cl_mem? = mem
        return clSetKernelArg(kernel, index, MemoryLayout<cl_mem?>.size, &m)
    }
}

/// How the kernels of a device were obtained when it opened.
public struct KernelBuildSummary: Sendable {
    /// Programs (one per Kernels/*.cl file).
    public var programs: Int
    /// How many of them came from the on-disk binary cache.
    public var fromCache: Int
    /// Wall time spent building or loading them.
    public var seconds: Double
}

/// The OpenCL backend: GEMM through CLBlast, every other primitive one or a few launches of the
/// kernels in Kernels/*.cl, all on one in-order queue. Calls return once the work is queued;
/// `read` and `synchronize` wait.
public final class OpenCLDevice: Device {
    public let kind = DeviceKind.opencl
    public let info: OpenCLDeviceInfo
    public var processor: Processor {
        switch info.type {
        case .cpu: return .cpu
        case .gpu: return .gpu
        case .accelerator: return .accelerator
        case .other: return .other
        }
    }
    /// "opencl:N (device, platform)".
    public let name: String
    public let kernelBuild: KernelBuildSummary
    /// Tuning knobs, fixed when the device opens.
    public let options: Options
    /// Scratch memory of this device's convolutions (im2col tiles).
    let workspace = Workspace()

    let cl: OpenCLQueue
    /// Platform, device and driver identity: part of every kernel-cache and tuning-cache key.
    let programIdentity: [String]
    /// The on-disk binary cache (nil when turned off); the geometry-specialised convolution
    /// kernels and their tuning choices are kept there too.
    let kernelCache: KernelCache?
    let programs: [cl_program]
    let kernels: [CLKernel]
    let k: KernelSet
    /// The geometry-specialised convolution kernels, their workspace and tuning choices.
    lazy var convolutionKernels = OpenCLConvolutionKernels(device: self)
    /// Work-group shape of the column reductions: TC channel lanes x RL row lanes (-DWG, -DTC).
    let reductionTC: Int, reductionRL: Int
    /// A device is driven from one thread at a time (its reduction scratch is shared state); the
    /// lock only keeps each set-arguments-then-enqueue pair atomic, since cl_kernel arguments are
    /// not thread-safe.
    private let lock = NSLock()
    /// Partial sums of the column reductions, grown on demand and reused (the queue is in order).
    private var scratch: [CLBuffer?] = [nil, nil]
    /// The first OpenCL failure after the device opened (a lost or reset device, a driver fault).
    /// The Device API does not throw, so the failure is kept here, later work is skipped, reads
    /// give NaN, and `checkHealthy` (called by the trainer after every step and before every
    /// checkpoint) turns it into an error. Guarded by `lock`.
    private var failure: VGGTLError?

    /// Every OpenCL device on this machine, across all platforms; [] when there is no driver.
    public static func enumerate() -> [OpenCLDeviceInfo] { OpenCLRuntime.devices().map(\.info) }

    /// Opens device `index` of `enumerate()` and builds (or loads from the cache) its kernels.
    public init(index: Int, options: Options = Options()) throws {
        self.options = options
        let handles = OpenCLRuntime.devices()
        guard !handles.isEmpty else { throw VGGTLError.noOpenCLDevice }
        guard handles.indices.contains(index) else {
            throw VGGTLError.deviceIndexOutOfRange(index: index, count: handles.count)
        }
        let handle = handles[index]
        info = handle.info
        name = "opencl:\(index) (\(info.name), \(info.platform))"
        cl = try OpenCLQueue(handle, name: name)

        let wg = powerOfTwo(atMost: max(1, min(256, info.maxWorkGroupSize)))
        reductionTC = min(16, wg)
        reductionRL = wg / reductionTC
        let options = "-cl-std=CL1.2 -DWG=\(wg) -DTC=\(reductionTC)"
        programIdentity = [info.platform, OpenCLRuntime.platformString(handle.platform, CL_PLATFORM_VERSION),
                           info.name, info.driverVersion, info.version]
        kernelCache = self.options.kernelCache.map { KernelCache(directory: $0) }
        let builder = ProgramBuilder(queue: cl, deviceName: name, identity: programIdentity,
                                     cache: kernelCache, options: options)

        let start = Date()
        var programs: [cl_program] = [], kernels: [CLKernel] = [], cached = 0
        do {
            for (file, source) in Self.programSources() {
                let built = try builder.build(file: file, source: source)
                programs.append(built.program)
                if built.cached { cached += 1 }
                kernels += try createKernels(in: built.program, device: cl.device, deviceName: name)
            }
            let byName = Dictionary(kernels.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            let deviceName = name
            k = try KernelSet { kernelName in
                guard let kernel = byName[kernelName] else {
                    throw VGGTLError.kernelBuild(file: "Kernels/*.cl", device: deviceName,
                                                 log: "no kernel named '\(kernelName)' in the embedded sources")
                }
                return kernel
            }
            for r in k.reductions where r.maxWorkGroupSize < wg {
                throw VGGTLError.kernelBuild(
                    file: "Kernels/norm.cl or layernorm.cl", device: name,
                    log: "kernel \(r.name) needs work-groups of \(wg) but the driver allows \(r.maxWorkGroupSize)")
            }
        } catch {
            kernels.forEach { clReleaseKernel($0.kernel) }
            programs.forEach { clReleaseProgram($0) }
            throw error
        }
        self.programs = programs
        self.kernels = kernels
        kernelBuild = KernelBuildSummary(programs: programs.count, fromCache: cached,
                                         seconds: Date().timeIntervalSince(start))
    }

    /// Compiles OpenCL C `source` for device `index` (no cache), as the kernels of Kernels/*.cl
    /// are compiled: for diagnostics and tests. A source that does not compile throws
    /// `VGGTLError.kernelBuild` with the driver's build log.
    public static func checkBuild(index: Int, file: String, source: String, options: String = "-cl-std=CL1.2") throws {
        let handles = OpenCLRuntime.devices()
        guard !handles.isEmpty else { throw VGGTLError.noOpenCLDevice }
        guard handles.indices.contains(index) else { throw VGGTLError.deviceIndexOutOfRange(index: index, count: handles.count) }
        let name = "opencl:\(index) (\(handles[index].info.name), \(handles[index].info.platform))"
        let queue = try OpenCLQueue(handles[index], name: name)
        let builder = ProgramBuilder(queue: queue, deviceName: name, identity: [], cache: nil, options: options)
        clReleaseProgram(try builder.build(file: file, source: source).program)
    }

    deinit {
        clFinish(cl.queue)
        kernels.forEach { clReleaseKernel($0.kernel) }
        programs.forEach { clReleaseProgram($0) }
    }

    /// One program per Kernels/*.cl file (sorted by name), each preceded by every Kernels/*.h.
    /// (The geometry-specialised sources under Kernels/conv/ are built on demand, per geometry:
    /// `OpenCLConvolutionKernels`.)
    static func programSources() -> [(file: String, source: String)] {
        let names = embeddedKernelSources.keys.filter { !$0.contains("/") }.sorted()
        let headers = names.filter { $0.hasSuffix(".h") }.map { embeddedKernelSources[$0]! }.joined(separator: "\n")
        return names.filter { $0.hasSuffix(".cl") }.map { file in
            let body = embeddedKernelSources[file]!
            return (file, headers.isEmpty ? body : headers + "\n#line 1\n" + body)
        }
    }

    // MARK: - Launch helpers

    /// Throws the first failure since the device opened, if any: the device's results since then
    /// are not to be trusted (nor saved).
    public func checkHealthy() throws {
        lock.lock(); defer { lock.unlock() }
        if let failure { throw failure }
    }

    /// Whether OpenCL work may be queued (no failure so far). Call with `lock` held.
    private var healthy: Bool { failure == nil }

    /// Records a failed OpenCL call (the first one wins). Call with `lock` held; returns whether
    /// `code` was a success.
    @discardableResult
    func orFail(_ code: cl_int, _ call: @autoclosure () -> String) -> Bool {
        guard code != CL_SUCCESS else { return true }
        if failure == nil { failure = .deviceFailed(device: name, call: call(), code: code) }
        return false
    }

    /// Records a failure that is not an OpenCL status (an allocation inside a primitive).
    func record(_ error: Error) {
        lock.lock(); defer { lock.unlock() }
        if failure == nil { failure = (error as? VGGTLError) ?? .deviceFailed(device: name, call: "\(error)", code: CL_OUT_OF_RESOURCES) }
    }

    func mem(_ buffer: DeviceBuffer) -> CLBuffer {
        guard let b = buffer as? CLBuffer, b.context == cl.context else {
            fatalError("\(name): buffer of \(buffer.count) floats belongs to another device")
        }
        return b
    }

    /// Runs `kernel` over `count` items, the range rounded up to the kernel's work-group size.
    func launch(_ kernel: CLKernel, _ count: Int, _ args: any KernelArgument...) {
        guard count > 0 else { return }
        let local = kernel.localSize
        enqueue(kernel, global: [(count + local - 1) / local * local], local: [local], args)
    }

    func enqueue(_ kernel: CLKernel, global: [Int], local: [Int], _ args: [any KernelArgument]) {
        if let total = global.first, total > Int(Int32.max) {
            record(VGGTLError.inputTooLarge("\(name): \(kernel.name) over \(total) items exceeds the kernels' 32-bit indexing"))
            return
        }
        lock.lock(); defer { lock.unlock() }
        guard healthy else { return }
        for (i, arg) in args.enumerated() {
            guard orFail(arg.set(on: kernel.kernel, index: cl_uint(i)), "clSetKernelArg(\(kernel.name), \(i))") else { return }
        }
        orFail(clEnqueueNDRangeKernel(cl.queue, kernel.kernel, cl_uint(global.count), nil, global, local, 0, nil, nil),
               "clEnqueueNDRangeKernel(\(kernel.name))")
    }

    // MARK: - Memory

    public func allocate(_ count: Int, what: String) throws -> DeviceBuffer {
        let bytes = max(count, 1) * MemoryLayout<Float>.size
        if bytes > info.maxAllocationBytes {
            throw VGGTLError.allocationTooLarge(bytes: bytes, limit: info.maxAllocationBytes, device: name, what: what)
        }
        var code: cl_int = 0
        let created = clCreateBuffer(cl.context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &code)
        guard let mem = created, code == CL_SUCCESS else {
            if let created { clReleaseMemObject(created) }
            switch code {
            case CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY:
                throw VGGTLError.outOfDeviceMemory(bytes: bytes, device: name)
            case CL_INVALID_BUFFER_SIZE:
                throw VGGTLError.allocationTooLarge(bytes: bytes, limit: info.maxAllocationBytes, device: name, what: what)
            default:
                throw VGGTLError.openCL(call: "clCreateBuffer(\(what))", code: code, device: name)
            }
        }
        return CLBuffer(mem: mem, count: count, context: cl.context, what: what)
    }

    /// Blocking: `values` is only valid during the call.
    public func write(_ values: UnsafeBufferPointer<Float>, to: DeviceBuffer, offset: Int) {
        guard let base = values.baseAddress, values.count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        guard healthy else { return }
        orFail(clEnqueueWriteBuffer(cl.queue, mem(to).mem, cl_bool(CL_TRUE), offset * 4, values.count * 4, base, 0, nil, nil),
               "clEnqueueWriteBuffer(\(mem(to).what))")
    }

    public func read(_ buffer: DeviceBuffer, offset: Int, into: UnsafeMutableBufferPointer<Float>) {
        guard let base = into.baseAddress, into.count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        // After a failure the values are meaningless: NaN, so nothing mistakes them for results.
        guard healthy, orFail(clEnqueueReadBuffer(cl.queue, mem(buffer).mem, cl_bool(CL_TRUE), offset * 4, into.count * 4, base, 0, nil, nil),
                              "clEnqueueReadBuffer(\(mem(buffer).what))") else {
            into.initialize(repeating: .nan)
            return
        }
    }

    public func copy(_ src: DeviceBuffer, srcOffset: Int, to dst: DeviceBuffer, dstOffset: Int, count: Int) {
        guard count > 0, !(src === dst && srcOffset == dstOffset) else { return }
        let s = mem(src), d = mem(dst)
        if s === d, abs(srcOffset - dstOffset) < count {
            // clEnqueueCopyBuffer rejects overlapping regions of one buffer: go through a temporary.
            let temp: DeviceBuffer
            do { temp = try allocate(count, what: "overlapping copy") } catch { record(error); return }
            copy(src, srcOffset: srcOffset, to: temp, dstOffset: 0, count: count)
            copy(temp, srcOffset: 0, to: dst, dstOffset: dstOffset, count: count)
            return
        }
        lock.lock(); defer { lock.unlock() }
        guard healthy else { return }
        orFail(clEnqueueCopyBuffer(cl.queue, s.mem, d.mem, srcOffset * 4, dstOffset * 4, count * 4, 0, nil, nil),
               "clEnqueueCopyBuffer(\(s.what) -> \(d.what))")
    }

    public func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        launch(k.fill, count, mem(buffer), offset, count, value)
    }

    public func synchronize() {
        lock.lock(); defer { lock.unlock() }
        orFail(clFinish(cl.queue), "clFinish")
    }

    /// Runs a library call that enqueues on this device's queue (CLBlast), under the lock and
    /// skipped after a failure. OpenCL statuses are recorded as for any OpenCL call; the
    /// library's own statuses (-1000 and below: not implemented, bad arguments) are returned
    /// for the caller to turn into an error, since they leave the device usable.
    func onQueue(_ call: @autoclosure () -> String, _ body: (UnsafeMutablePointer<cl_command_queue?>) -> cl_int) -> cl_int {
        lock.lock(); defer { lock.unlock() }
        guard healthy else { return CL_SUCCESS }
        var queue: cl_command_queue? = cl.queue
        let code = body(&queue)
        if code > -1000 { orFail(code, call()) }
        return code
    }

    // MARK: - GEMM

    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k kk: Int, alpha: Float,
                     a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                     beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int) {
        guard m > 0, n > 0 else { return }
        guard kk > 0 else {
            // C = beta * C (CLBlast rejects k = 0; BLAS defines it).
            launch(k.scaleMatrix, m * n, mem(c), cOffset, m, n, ldc, beta)
            return
        }
        let am = mem(a), bm = mem(b), cm = mem(c)
        lock.lock(); defer { lock.unlock() }
        guard healthy else { return }
        var queue: cl_command_queue? = cl.queue
        let status = CLBlastSgemm(CLBlastLayoutRowMajor,
                                  transA ? CLBlastTransposeYes : CLBlastTransposeNo,
                                  transB ? CLBlastTransposeYes : CLBlastTransposeNo,
                                  m, n, kk, alpha, am.mem, aOffset, lda, bm.mem, bOffset, ldb,
                                  beta, cm.mem, cOffset, ldc, &queue, nil)
        orFail(status == CLBlastSuccess ? CL_SUCCESS : status.rawValue, "CLBlastSgemm(m: \(m), n: \(n), k: \(kk))")
    }

    // MARK: - Convolution helpers

    public func im2col(_ x: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, col: DeviceBuffer) {
        launch(k.im2col, rows * g.patchSize, mem(x), mem(col), g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW, row0, rows)
    }

    public func col2imAdd(_ dcol: DeviceBuffer, _ g: WindowGeometry, row0: Int, rows: Int, dx: DeviceBuffer) {
        guard rows > 0 else { return }
        let pixels = g.inputPixelRange(row0: row0, rows: rows)
        launch(k.col2imAdd, pixels.count * g.inC, mem(dcol), mem(dx), g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW, row0, rows,
               pixels.lowerBound, pixels.count)
    }

    public func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, rows: Int, channels: Int) {
        launch(k.addBias, rows * channels, mem(y), mem(bias), rows * channels, channels)
    }

    // MARK: - Column reductions

    /// Splits a rows x channels reduction into channel tiles and row chunks: enough work-groups
    /// to fill the device, at least 8 rows per row lane, at most 1024 chunks.
    private func reductionPlan(rows: Int, channels: Int) -> (tiles: Int, chunks: Int, rowsPerChunk: Int) {
        let tiles = (channels + reductionTC - 1) / reductionTC
        let wanted = max(1, (info.computeUnits * 8 + tiles - 1) / tiles)
        let chunkLimit = max(1, min(1024, rows / (reductionRL * 8)))
        var chunks = min(wanted, chunkLimit)
        let rowsPerChunk = max(1, (rows + chunks - 1) / chunks)
        chunks = max(1, (rows + rowsPerChunk - 1) / rowsPerChunk)
        return (tiles, chunks, rowsPerChunk)
    }

    /// nil when it cannot be allocated: the failure is recorded and the primitive skipped.
    func scratchBuffer(_ slot: Int, count: Int) -> CLBuffer? {
        if let b = scratch[slot], b.count >= count { return b }
        do {
            let b = try allocate(max(count, 4096), what: "reduction scratch") as! CLBuffer
            scratch[slot] = b
            return b
        } catch {
            record(error)
            return nil
        }
    }

    private func launchReduction(_ kernel: CLKernel, tiles: Int, chunks: Int, _ args: any KernelArgument...) {
        enqueue(kernel, global: [tiles * reductionTC, chunks * reductionRL], local: [reductionTC, reductionRL], args)
    }

    public func biasGradient(_ dy: DeviceBuffer, rows: Int, channels: Int, db: DeviceBuffer, accumulate: Bool) {
        guard channels > 0 else { return }
        let plan = reductionPlan(rows: rows, channels: channels)
        guard let partial = scratchBuffer(0, count: plan.chunks * channels) else { return }
        launchReduction(k.columnSumPartial, tiles: plan.tiles, chunks: plan.chunks,
                        mem(dy), rows, channels, plan.rowsPerChunk, partial)
        launch(k.biasGradientFinish, channels, partial, plan.chunks, channels, mem(db), accumulate)
    }

    public func channelMeanVariance(_ x: DeviceBuffer, rows: Int, channels: Int, mean: DeviceBuffer, variance: DeviceBuffer) {
        guard channels > 0 else { return }
        let plan = reductionPlan(rows: rows, channels: channels)
        guard let partial = scratchBuffer(0, count: plan.chunks * channels) else { return }
        launchReduction(k.columnSumPartial, tiles: plan.tiles, chunks: plan.chunks,
                        mem(x), rows, channels, plan.rowsPerChunk, partial)
        launch(k.columnMeanFinish, channels, partial, plan.chunks, channels, rows, mem(mean))
        // Second pass over squared deviations from the mean: no cancellation as in E[x^2] - E[x]^2.
        launchReduction(k.columnSqdevPartial, tiles: plan.tiles, chunks: plan.chunks,
                        mem(x), mem(mean), rows, channels, plan.rowsPerChunk, partial)
        launch(k.columnMeanFinish, channels, partial, plan.chunks, channels, rows, mem(variance))
    }

    public func batchNormApply(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int,
                               mean: DeviceBuffer, variance: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer,
                               epsilon: Float, relu: Bool) {
        launch(k.batchNormApply, rows * channels, mem(x), mem(y), rows * channels, channels,
               mem(mean), mem(variance), mem(gamma), mem(beta), epsilon, relu)
    }

    public func batchNormUpdateRunning(runningMean: DeviceBuffer, runningVariance: DeviceBuffer,
                                       mean: DeviceBuffer, variance: DeviceBuffer, channels: Int, rows: Int,
                                       momentum: Float) {
        let unbias = Float(rows) / Float(max(rows - 1, 1))
        launch(k.batchNormUpdateRunning, channels, mem(runningMean), mem(runningVariance), mem(mean), mem(variance),
               channels, momentum, unbias)
    }

    public func batchNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int,
                                  mean: DeviceBuffer, variance: DeviceBuffer, gamma: DeviceBuffer, epsilon: Float,
                                  dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        guard channels > 0 else { return }
        let plan = reductionPlan(rows: rows, channels: channels)
        guard let partialDy = scratchBuffer(0, count: plan.chunks * channels),
              let partialDyXhat = scratchBuffer(1, count: plan.chunks * channels) else { return }
        launchReduction(k.batchNormBackwardPartial, tiles: plan.tiles, chunks: plan.chunks,
                        mem(x), mem(dy), mem(mean), mem(variance), epsilon, rows, channels, plan.rowsPerChunk,
                        partialDy, partialDyXhat)
        launch(k.batchNormBackwardFinish, channels, partialDy, partialDyXhat, plan.chunks, channels,
               mem(dgamma), mem(dbeta))
        launch(k.batchNormBackwardDx, rows * channels, mem(x), mem(dy), mem(dx), rows * channels, channels, rows,
               mem(mean), mem(variance), mem(gamma), epsilon, mem(dgamma), mem(dbeta))
    }

    // MARK: - Elementwise

    public func relu(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) {
        launch(k.relu, count, mem(x), mem(y), count)
    }

    public func reluBackward(_ y: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int) {
        launch(k.reluBackward, count, mem(y), mem(dy), mem(dx), count)
    }

    public func scale(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, by s: Float) {
        launch(k.scale, count, mem(x), mem(y), count, s)
    }

    public func axpy(alpha: Float, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) {
        launch(k.axpy, count, mem(x), mem(y), count, alpha)
    }

    public func add(_ a: DeviceBuffer, _ b: DeviceBuffer, _ y: DeviceBuffer, count: Int, relu: Bool) {
        launch(k.add, count, mem(a), mem(b), mem(y), count, relu)
    }

    public func copyBlock(_ src: DeviceBuffer, _ s: BlockLayout, to dst: DeviceBuffer, _ d: BlockLayout, outer: Int, rows: Int, cols: Int) {
        launch(k.copyBlock, outer * rows * cols, mem(src), s.offset, s.outerStride, s.rowStride,
               mem(dst), d.offset, d.outerStride, d.rowStride, outer, rows, cols)
    }

    public func reluRows(_ x: DeviceBuffer, _ xl: RowLayout, _ y: DeviceBuffer, _ yl: RowLayout, rows: Int, cols: Int) {
        launch(k.reluRows, rows * cols, mem(x), xl.offset, xl.stride, mem(y), yl.offset, yl.stride, rows, cols)
    }

    public func reluBackwardRows(_ y: DeviceBuffer, _ yl: RowLayout, _ dy: DeviceBuffer, _ dyl: RowLayout,
                                 _ dx: DeviceBuffer, _ dxl: RowLayout, rows: Int, cols: Int) {
        launch(k.reluBackwardRows, rows * cols, mem(y), yl.offset, yl.stride, mem(dy), dyl.offset, dyl.stride,
               mem(dx), dxl.offset, dxl.stride, rows, cols)
    }

    public func dropout(_ x: DeviceBuffer, _ y: DeviceBuffer, count: Int, rate: Float, seed: UInt32, indexOffset: UInt32) {
        launch(k.dropout, count, mem(x), mem(y), count, rate, 1 / (1 - rate), seed, indexOffset)
    }

    // MARK: - Pooling

    private func launchPool(_ kernel: CLKernel, _ count: Int, _ a: DeviceBuffer, _ b: DeviceBuffer, _ g: WindowGeometry) {
        launch(kernel, count, mem(a), mem(b), g.batch, g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW)
    }

    public func maxPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry) {
        launchPool(k.maxPool, g.outPixels * g.inC, x, y, g)
    }

    public func maxPoolBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry) {
        launch(k.maxPoolBackward, g.inCount, mem(x), mem(dy), mem(dx), g.batch, g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW)
    }

    public func avgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        launch(k.avgPool, g.outPixels * g.inC, mem(x), mem(y), g.batch, g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW, g.padBottom, g.padRight, countPadding)
    }

    public func avgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry, countPadding: Bool) {
        launch(k.avgPoolBackward, g.inCount, mem(dy), mem(dx), g.batch, g.inH, g.inW, g.inC, g.kH, g.kW,
               g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW, g.padBottom, g.padRight, countPadding)
    }

    public func globalAvgPool(_ x: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        launch(k.globalAvgPool, batch * channels, mem(x), mem(y), batch, pixels, channels)
    }

    public func globalAvgPoolBackward(_ dy: DeviceBuffer, _ dx: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        launch(k.globalAvgPoolBackward, batch * pixels * channels, mem(dy), mem(dx), batch, pixels, channels)
    }

    // MARK: - Losses

    // Without class weights the kernels get the logits as a stand-in buffer that they do not read.
    public func softmaxCrossEntropy(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, classes: Int,
                                    loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        guard classes > 0 else { return }
        launch(k.softmaxCrossEntropy, rows, mem(logits), mem(labels), rows, classes, mem(loss), mem(dlogits), gradScale,
               mem(classWeights ?? logits), Int32(classWeights == nil ? 0 : 1))
    }

    public func sigmoidBinaryCrossEntropy(_ logits: DeviceBuffer, targets: DeviceBuffer, count: Int,
                                          loss: DeviceBuffer, dlogits: DeviceBuffer, gradScale: Float, classWeights: DeviceBuffer?) {
        launch(k.sigmoidBinaryCrossEntropy, count, mem(logits), mem(targets), count, mem(loss), mem(dlogits), gradScale,
               mem(classWeights ?? logits), Int32(classWeights == nil ? 0 : 1))
    }

    public func softmax(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, classes: Int) {
        guard classes > 0 else { return }
        launch(k.softmax, rows, mem(x), mem(y), rows, classes)
    }

    // MARK: - Optimizers

    public func sgdUpdate(param: DeviceBuffer, grad: DeviceBuffer, velocity: DeviceBuffer?, count: Int, _ c: SGDConfig) {
        if let velocity {
            launch(k.sgdMomentum, count, mem(param), mem(grad), mem(velocity), count,
                   c.lr, c.momentum, c.nesterov, c.weightDecay)
        } else {
            launch(k.sgd, count, mem(param), mem(grad), count, c.lr, c.weightDecay)
        }
    }

    public func adamUpdate(param: DeviceBuffer, grad: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, count: Int,
                           step: Int, _ c: AdamConfig) {
        let c1 = 1 - powf(c.beta1, Float(step)), c2 = 1 - powf(c.beta2, Float(step))
        launch(k.adam, count, mem(param), mem(grad), mem(m), mem(v), count,
               c.lr, c.beta1, c.beta2, c.epsilon, c.weightDecay, c1, c2)
    }

    public func rmspropUpdate(param: DeviceBuffer, grad: DeviceBuffer, meanSquare: DeviceBuffer, count: Int,
                              _ c: RMSpropConfig) {
        launch(k.rmsprop, count, mem(param), mem(grad), mem(meanSquare), count, c.lr, c.rho, c.epsilon, c.weightDecay)
    }
}

import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the CPU and every OpenCL device, and what --device auto picks.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "List the tuning knobs (environment variables) with their values and defaults instead.") var knobs = false

    func run() throws {
        if knobs {
            print(RunContext.current.knobs.listing)
            return
        }
        let cpu = try DeviceChoice.describeCPU(threads: global.threads, options: RunContext.current.knobs.settings.cpu)
        print("cpu        \(cpu.model), \(ProcessInfo.processInfo.activeProcessorCount) cores, using \(cpu.threads) threads")
        print("           BLAS: OpenBLAS \(cpu.blasKernels) kernels (\(cpu.blasKernelSource))")
        let cl = DeviceChoice.openCLDevices()
        if cl.isEmpty { print("opencl     no OpenCL platform or device found") }
        for d in cl {
            print("opencl:\(d.index)".padding(toLength: 11, withPad: " ", startingAt: 0)
                  + "\(d.name) [\(d.type)] on \(d.platform)")
            print("           \(d.computeUnits) compute units, \(formatBytes(d.globalMemoryBytes)) memory, "
                  + "max allocation \(formatBytes(d.maxAllocationBytes)), \(d.version), driver \(d.driverVersion)")
        }
        print("auto       -> \(DeviceChoice.resolveAuto(cl))")
        // An explicit --device must exist: the same error a training command would give.
        let choice = global.device
        if case .opencl(let n) = choice {
            if cl.isEmpty { throw VGGTLError.noOpenCLDevice }
            if n >= cl.count { throw VGGTLError.deviceIndexOutOfRange(index: n, count: cl.count) }
        }
        if choice != .auto { print("selected   -> \(choice)") }
        // Under mpirun: what each rank drives (one rank per device).
        if let launch = Job.launch, let comm = try Job.start(global) {
            let mine = RankDevice.choose(choice, localRank: launch.localRank, localSize: launch.localSize, devices: cl,
                                         cores: ProcessInfo.processInfo.activeProcessorCount, threads: global.threads, name: FlagWording.flag)
            let lines = try comm.allgatherStrings("rank \(comm.rank) (\(comm.peers[comm.rank]), local rank \(launch.localRank) of \(launch.localSize)) -> \(mine.reason)",
                                                  what: "device choices")
            print("mpi        \(comm.libraryDescription), \(comm.size) ranks")
            for l in lines { print("           \(l)") }
        }
    }
}

func formatBytes(_ bytes: Int) -> String {
    let gib = Double(bytes) / 1_073_741_824
    return gib >= 1 ? String(format: "%.1f GiB", gib) : String(format: "%.0f MiB", gib * 1024)
}

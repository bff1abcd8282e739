import Foundation
import VGGTLTensors
import VGGTLOpenCL

/// The device of one rank: one rank per device. `--device auto` gives each rank of a node its own
/// GPU (opencl:<local rank>) when the node has GPUs, sharing them round-robin if it has fewer
/// than ranks, and otherwise the CPU with the node's cores split between its ranks. An explicit
/// --device is taken as given (ranks of a node then share it; CPU threads are still split).
public struct RankDevice: Equatable, Sendable {
    public var choice: DeviceChoice
    /// CPU threads (nil: the device's default).
    public var threads: Int?
    /// Why, for `vggtl devices` and the training banner.
    public var reason: String

    /// `name`: how the reason names the settings it mentions (the CLI names its flags).
    public static func choose(_ asked: DeviceChoice, localRank: Int, localSize: Int, devices: [OpenCLDeviceInfo],
                              cores: Int, threads: Int?, name: (Setting) -> String = { $0.title }) -> RankDevice {
        let split = threads ?? max(1, cores / max(localSize, 1))
        let splitText = threads != nil ? "\(split) threads (\(name(.threads)))" : "\(split) of the node's \(cores) cores (split between its \(localSize) ranks)"
        switch asked {
        case .cpu:
            return RankDevice(choice: .cpu, threads: split, reason: "cpu with \(splitText)")
        case .opencl(let n):
            let shared = localSize > 1 ? ", shared by the node's \(localSize) ranks (\(name(.device)) auto gives each rank its own GPU)" : ""
            return RankDevice(choice: .opencl(n), threads: threads, reason: "opencl:\(n) as asked\(shared)")
        case .auto:
            let gpus = devices.filter { $0.type == .gpu }
            guard !gpus.isEmpty else {
                return RankDevice(choice: .cpu, threads: split, reason: "auto: no OpenCL GPU on this node, so the cpu with \(splitText)")
            }
            let gpu = gpus[localRank % gpus.count]
            let share = gpus.count < localSize
                ? " (the node has \(gpus.count) GPU\(gpus.count == 1 ? "" : "s") for \(localSize) ranks: they share)" : ""
            return RankDevice(choice: .opencl(gpu.index), threads: threads,
                              reason: "auto: local rank \(localRank) -> GPU opencl:\(gpu.index) \(gpu.name)\(share)")
        }
    }
}

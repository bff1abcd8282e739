import Foundation
import VGGTLTensors
import VGGTLCPU
import VGGTLOpenCL

/// What `--device` asks for: cpu | opencl | opencl:N | auto.
public enum DeviceChoice: Equatable, Sendable, CustomStringConvertible {
    case cpu, auto
    case opencl(Int)

    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "cpu": self = .cpu
        case "auto": self = .auto
        case "opencl", "gpu": self = .opencl(0)
        case let s where s.hasPrefix("opencl:"):
            guard let n = Int(s.dropFirst(7)), n >= 0 else {
                throw VGGTLError.invalidSetting(.device, value: text, expected: "cpu, opencl, opencl:N (N >= 0) or auto")
            }
            self = .opencl(n)
        default:
            throw VGGTLError.invalidSetting(.device, value: text, expected: "cpu, opencl, opencl:N or auto")
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .auto: return "auto"
        case .opencl(let n): return "opencl:\(n)"
        }
    }

    /// `auto` picks the first OpenCL GPU, else the CPU (an OpenCL CPU device such as PoCL is
    /// slower than OpenBLAS on the same cores).
    public static func resolveAuto(_ devices: [OpenCLDeviceInfo]) -> DeviceChoice {
        devices.first { $0.type == .gpu }.map { .opencl($0.index) } ?? .cpu
    }

    /// Opens the chosen device with its tuning options; errors say what exists. With `auto`,
    /// an OpenCL GPU that fails to open (no context, kernels that do not build, no memory) is
    /// reported through `warn` (its error in `describe`'s words) and the CPU is used instead.
    public func open(threads: Int? = nil, cpu cpuOptions: CPUDevice.Options = CPUDevice.Options(),
                     opencl openclOptions: OpenCLDevice.Options = OpenCLDevice.Options(),
                     warn: (String) -> Void = DeviceChoice.printWarning,
                     describe: (Error) -> String = { String(describing: $0) }) throws -> Device {
        switch self {
        case .cpu: return try CPUDevice(threads: threads, options: cpuOptions)
        case .opencl(let n): return try OpenCLDevice(index: n, options: openclOptions)
        case .auto:
            return try DeviceChoice.openAuto(OpenCLDevice.enumerate(), openOpenCL: { try OpenCLDevice(index: $0, options: openclOptions) },
                                             openCPU: { try CPUDevice(threads: threads, options: cpuOptions) }, warn: warn, describe: describe)
        }
    }

    /// `auto`'s choice with the openers given (tests pass failing ones): the first OpenCL GPU,
    /// falling back to the CPU with a warning when it fails to open; else the CPU.
    public static func openAuto(_ devices: [OpenCLDeviceInfo], openOpenCL: (Int) throws -> Device,
                                openCPU: () throws -> Device, warn: (String) -> Void,
                                describe: (Error) -> String = { String(describing: $0) }) throws -> Device {
        guard case .opencl(let n) = resolveAuto(devices) else { return try openCPU() }
        do {
            return try openOpenCL(n)
        } catch {
            let first = describe(error).split(separator: "\n").prefix(3).joined(separator: " | ")
            let gpu = devices.first { $0.index == n }.map { "\($0.name) (\($0.platform))" } ?? "opencl:\(n)"
            warn("the OpenCL GPU opencl:\(n) \(gpu) failed to open, using the CPU instead: \(first)")
            return try openCPU()
        }
    }

    public static func printWarning(_ text: String) {
        writeStandardError("warning: device auto: \(text)\n")
    }
}

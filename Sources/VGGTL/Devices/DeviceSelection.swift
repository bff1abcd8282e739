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
                throw VGGTLError.badFlag(flag: "--device", value: text, expected: "cpu, opencl, opencl:N (N >= 0) or auto")
            }
            self = .opencl(n)
        default:
            throw VGGTLError.badFlag(flag: "--device", value: text, expected: "cpu, opencl, opencl:N or auto")
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

    /// Opens the chosen device; errors name the flag and say what exists.
    public func open(threads: Int? = nil) throws -> Device {
        switch self {
        case .cpu: return try CPUDevice(threads: threads)
        case .opencl(let n): return try OpenCLDevice(index: n)
        case .auto: return try DeviceChoice.resolveAuto(OpenCLDevice.enumerate()).open(threads: threads)
        }
    }
}

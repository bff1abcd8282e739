import VGGTLTensors
import VGGTLCPU
import VGGTLOpenCL

// What the code above the devices (the CLI) may know of the concrete backends: their tuning
// options, the OpenCL device list, and a description of the CPU. Everything else reaches a
// device through `DeviceChoice.open` and the `Device` protocol.

/// The CPU device's tuning options.
public typealias CPUOptions = CPUDevice.Options
/// The CPU's convolution algorithms, by name (VGGTL_CONV).
public typealias CPUConvolutionAlgorithm = CPUDevice.ConvolutionAlgorithm
/// An OpenCL device's tuning options.
public typealias OpenCLOptions = OpenCLDevice.Options
/// The OpenCL convolution algorithms, by name (VGGTL_OCL_CONV).
public typealias OpenCLConvolutionFamily = OpenCLDevice.ConvolutionFamily

/// The CPU as `vggtl devices` lists it.
public struct CPUDescription: Sendable {
    /// The processor's model name.
    public var model: String
    /// The threads the device uses.
    public var threads: Int
    /// The OpenBLAS kernels in use (Haswell, SkylakeX, ...) and who chose them.
    public var blasKernels: String
    public var blasKernelSource: String
}

extension DeviceChoice {
    /// Every OpenCL device of every platform, numbered as `--device opencl:N` counts them.
    public static func openCLDevices() -> [OpenCLDeviceInfo] { OpenCLDevice.enumerate() }

    /// Opens the CPU as `.cpu.open` would and says what it uses.
    public static func describeCPU(threads: Int? = nil, options: CPUOptions = CPUOptions()) throws -> CPUDescription {
        let cpu = try CPUDevice(threads: threads, options: options)
        return CPUDescription(model: CPUInfo.modelName, threads: cpu.threads, blasKernels: cpu.blasKernels,
                              blasKernelSource: cpu.blasKernelSource)
    }
}

import VGGTLTensors
import VGGTLBackends

/// Warns when the device asked for runs on the host's CPU through OpenCL (PoCL): there its
/// kernels run many times slower than the CPU backend on the same cores (3 batches in 240 s
/// against an epoch in 11 s), which looks like a hang. Said once, by the first rank.
func warnIfOpenCLOnCPU(_ device: Device, asked: DeviceChoice) {
    guard device.kind == .opencl, device.processor == .cpu, Job.isPrimary else { return }
    stderr("warning: --device \(asked) is an OpenCL device on the CPU (\(device.name), CL_DEVICE_TYPE_CPU), "
        + "where vggtl's OpenCL kernels run many times slower than its own CPU backend (OpenBLAS) on the same cores; use --device cpu")
}

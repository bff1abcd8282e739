import Foundation
import COpenCL
import VGGTLTensors

/// What kind of processor an OpenCL device is.
public enum OpenCLDeviceType: String, Sendable {
    case gpu, cpu, accelerator, other
}

/// One OpenCL device as the driver describes it. `index` counts devices across all platforms,
/// in platform order then device order: the `N` of `--device opencl:N`.
public struct OpenCLDeviceInfo: Sendable, Equatable {
    public var index: Int
    /// Device name, e.g. "NVIDIA H100 80GB HBM3".
    public var name: String
    /// Platform name, e.g. "NVIDIA CUDA", "Portable Computing Language".
    public var platform: String
    public var type: OpenCLDeviceType
    public var computeUnits: Int
    public var globalMemoryBytes: Int
    /// CL_DEVICE_MAX_MEM_ALLOC_SIZE: the largest single buffer.
    public var maxAllocationBytes: Int
    public var maxWorkGroupSize: Int
    public var driverVersion: String
    /// CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA".
    public var version: String

    public init(index: Int, name: String, platform: String, type: OpenCLDeviceType, computeUnits: Int, globalMemoryBytes: Int,
                maxAllocationBytes: Int, maxWorkGroupSize: Int, driverVersion: String, version: String) {
        self.index = index; self.name = name; self.platform = platform; self.type = type; self.computeUnits = computeUnits
        self.globalMemoryBytes = globalMemoryBytes; self.maxAllocationBytes = maxAllocationBytes
        self.maxWorkGroupSize = maxWorkGroupSize; self.driverVersion = driverVersion; self.version = version
    }
}

/// A device found by enumeration, with the handles needed to open it.
struct OpenCLDeviceHandle {
    let info: OpenCLDeviceInfo
    let platform: cl_platform_id
    let device: cl_device_id
}

enum OpenCLRuntime {
    /// All devices of all platforms; empty (never a crash) when no driver is installed, in which
    /// case clGetPlatformIDs answers -1001 (CL_PLATFORM_NOT_FOUND_KHR).
    static func devices() -> [OpenCLDeviceHandle] {
        var platformCount: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &platformCount) == CL_SUCCESS, platformCount > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        guard clGetPlatformIDs(platformCount, &platforms, nil) == CL_SUCCESS else { return [] }
        var result: [OpenCLDeviceHandle] = []
        for case let platform? in platforms {
            let platformName = platformString(platform, CL_PLATFORM_NAME)
            var deviceCount: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount) == CL_SUCCESS,
                  deviceCount > 0 else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &ids, nil) == CL_SUCCESS
            else { continue }
            for case let device? in ids {
                let typeBits: cl_device_type = deviceValue(device, CL_DEVICE_TYPE)
                let type: OpenCLDeviceType =
                    typeBits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? .gpu
                    : typeBits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? .cpu
                    : typeBits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 ? .accelerator : .other
                let info = OpenCLDeviceInfo(
                    index: result.count,
                    name: deviceString(device, CL_DEVICE_NAME),
                    platform: platformName,
                    type: type,
                    computeUnits: Int(deviceValue(device, CL_DEVICE_MAX_COMPUTE_UNITS) as cl_uint),
                    globalMemoryBytes: Int(clamping: deviceValue(device, CL_DEVICE_GLOBAL_MEM_SIZE) as cl_ulong),
                    maxAllocationBytes: Int(clamping: deviceValue(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE) as cl_ulong),
                    maxWorkGroupSize: deviceValue(device, CL_DEVICE_MAX_WORK_GROUP_SIZE) as Int,
                    driverVersion: deviceString(device, CL_DRIVER_VERSION),
                    version: deviceString(device, CL_DEVICE_VERSION))
                result.append(OpenCLDeviceHandle(info: info, platform: platform, device: device))
            }
        }
        return result
    }

    static func deviceValue<T: FixedWidthInteger>(_ device: cl_device_id, _ param: Int32) -> T {
        var value: T = 0
        _ = clGetDeviceInfo(device, cl_device_info(param), MemoryLayout<T>.size, &value, nil)
        return value
    }

    static func deviceString(_ device: cl_device_id, _ param: Int32) -> String {
        infoString { clGetDeviceInfo(device, cl_device_info(param), $0, $1, $2) }
    }

    static func platformString(_ platform: cl_platform_id, _ param: Int32) -> String {
        infoString { clGetPlatformInfo(platform, cl_platform_info(param), $0, $1, $2) }
    }

    /// Reads a string-valued clGet*Info query (size first, then the bytes).
    static func infoString(_ query: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) -> String {
        var size = 0
        guard query(0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: size)
        guard bytes.withUnsafeMutableBytes({ query(size, $0.baseAddress, nil) }) == CL_SUCCESS else { return "" }
        let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Throws `VGGTLError.openCL` unless `code` is CL_SUCCESS.
@inline(__always)
func check(_ code: cl_int, call: @autoclosure () -> String, device: @autoclosure () -> String) throws {
    if code != CL_SUCCESS { throw VGGTLError.openCL(call: call(), code: code, device: device()) }
}

/// An in-order command queue on its own context, for one device.
final class OpenCLQueue {
    let context: cl_context
    let queue: cl_command_queue
    let device: cl_device_id

    init(_ handle: OpenCLDeviceHandle, name: String) throws {
        var code: cl_int = 0
        var properties: [cl_context_properties] = [
            cl_context_properties(CL_CONTEXT_PLATFORM), cl_context_properties(Int(bitPattern: handle.platform)), 0,
        ]
        var device: cl_device_id? = handle.device
        guard let context = clCreateContext(&properties, 1, &device, nil, nil, &code), code == CL_SUCCESS else {
            throw VGGTLError.openCL(call: "clCreateContext", code: code, device: name)
        }
        guard let queue = clCreateCommandQueue(context, handle.device, 0, &code), code == CL_SUCCESS else {
            clReleaseContext(context)
            throw VGGTLError.openCL(call: "clCreateCommandQueue", code: code, device: name)
        }
        self.context = context
        self.queue = queue
        self.device = handle.device
    }

    deinit {
        clFinish(queue)
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }
}

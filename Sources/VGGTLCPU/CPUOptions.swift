import Foundation
import VGGTLTensors

extension CPUDevice {
    /// Which convolution algorithm the CPU's plans use where more than one applies.
    /// `auto`: Winograd F(4x4,3x3) or F(2x2,3x3) (fewer multiplies for the image size) on 3x3
    /// stride-1 'same' layers with at least 8 channels in and out, per-thread im2col tiles
    /// elsewhere, one GEMM for 1x1. `im2col`: per-thread im2col tiles (fused bias and ReLU) on
    /// every layer but 1x1. `im2colWholeTile`: the device-generic path (large tiles through the
    /// Device primitives, as on OpenCL). `winograd2`/`winograd4`: that Winograd variant wherever
    /// Winograd applies.
    public enum ConvolutionAlgorithm: String, Sendable, CaseIterable {
        case auto, im2col, im2colWholeTile, winograd2, winograd4
    }

    /// Tuning knobs of one CPU device, fixed when it opens. Benchmarks and tests pass them to
    /// `CPUDevice(threads:options:)`; the CLI reads them from its knob table (VGGTL_CONV,
    /// VGGTL_WINOGRAD_CHUNK, OPENBLAS_CORETYPE).
    public struct Options: Sendable, Equatable {
        public var convolution: ConvolutionAlgorithm
        /// The largest im2col tile (floats) of the device-generic path, which backward-data of
        /// non-Winograd layers and `im2colWholeTile` use; bounds memory at VGG16 sizes.
        public var im2colTileFloats: Int
        /// Floats of transformed Winograd tiles (input and products) one thread works on at once.
        public var winogradChunkFloats: Int
        /// The fewest tiles per Winograd chunk (tests lower it to exercise many chunks).
        public var winogradMinChunk: Int
        /// The OpenBLAS kernels the user asked for (their OPENBLAS_CORETYPE); nil: vggtl chooses
        /// from the CPU flags. OpenBLAS loads once per process: the first CPU device decides.
        public var openblasCoreType: String?

        public init(convolution: ConvolutionAlgorithm = .auto, im2colTileFloats: Int = 16 << 20,
                    winogradChunkFloats: Int = 4 << 20, winogradMinChunk: Int = 128, openblasCoreType: String? = nil) {
            self.convolution = convolution; self.im2colTileFloats = im2colTileFloats
            self.winogradChunkFloats = winogradChunkFloats; self.winogradMinChunk = winogradMinChunk
            self.openblasCoreType = openblasCoreType
        }
    }
}

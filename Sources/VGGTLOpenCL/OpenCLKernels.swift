import COpenCL

/// One kernel object, created once per device and reused for every launch.
struct CLKernel {
    let name: String
    let kernel: cl_kernel
    /// The work-group size of 1-D launches: a power of two, at most 256, within what the
    /// driver allows for this kernel (CL_KERNEL_WORK_GROUP_SIZE).
    let localSize: Int
    /// CL_KERNEL_WORK_GROUP_SIZE as the driver reports it.
    let maxWorkGroupSize: Int
}

/// A value that can be a kernel argument: buffers, and the int/uint/float scalars our kernels take.
protocol KernelArgument {
    func set(on kernel: cl_kernel, index: cl_uint) -> cl_int
}

extension KernelArgument where Self: BitwiseCopyable {
    func set(on kernel: cl_kernel, index: cl_uint) -> cl_int {
        withUnsafeBytes(of: self) { clSetKernelArg(kernel, index, $0.count, $0.baseAddress) }
    }
}

extension Int32: KernelArgument {}
extension UInt32: KernelArgument {}
extension Float: KernelArgument {}

/// Swift Ints travel as the kernels' 32-bit `int`; sizes beyond 2^31 - 1 are a programming
/// fault here (tensors that large are tiled by the layers above).
extension Int: KernelArgument {
    func set(on kernel: cl_kernel, index: cl_uint) -> cl_int {
        guard let value = Int32(exactly: self) else {
            fatalError("OpenCL kernel argument \(index) = \(self) does not fit a 32-bit int")
        }
        return value.set(on: kernel, index: index)
    }
}

extension Bool: KernelArgument {
    func set(on kernel: cl_kernel, index: cl_uint) -> cl_int { Int32(self ? 1 : 0).set(on: kernel, index: index) }
}

/// The kernels of Kernels/*.cl, looked up by name once when the device opens.
struct KernelSet {
    // elementwise.cl
    let fill, relu, reluBackward, scale, axpy, addBias, scaleMatrix, dropout: CLKernel
    let add, copyBlock, reluRows, reluBackwardRows: CLKernel
    // conv.cl
    let im2col, col2imAdd: CLKernel
    // pool.cl
    let maxPool, maxPoolBackward, avgPool, avgPoolBackward, globalAvgPool, globalAvgPoolBackward: CLKernel
    // norm.cl
    let columnSumPartial, columnSqdevPartial, batchNormBackwardPartial: CLKernel
    let biasGradientFinish, columnMeanFinish, batchNormBackwardFinish, batchNormBackwardDx: CLKernel
    let batchNormApply, batchNormUpdateRunning: CLKernel
    // loss.cl
    let softmaxCrossEntropy, sigmoidBinaryCrossEntropy, softmax: CLKernel
    // optim.cl
    let sgd, sgdMomentum, adam, rmsprop: CLKernel
    // depthwise.cl
    let depthwiseConv, depthwiseConvBackwardData, depthwiseConvBackwardFilterPartial: CLKernel
    // activation.cl
    let pointwise, pointwiseBackward: CLKernel
    // layernorm.cl
    let layerNorm, layerNormBackwardDx, layerNormBackwardParamsPartial, channelScale, channelScaleGradientPartial: CLKernel

    /// The column-reduction kernels, which must launch with exactly the compiled work-group size.
    var reductions: [CLKernel] { [columnSumPartial, columnSqdevPartial, batchNormBackwardPartial, layerNorm, layerNormBackwardDx] }

    init(_ k: (String) throws -> CLKernel) throws {
        fill = try k("fill"); relu = try k("relu"); reluBackward = try k("relu_backward")
        scale = try k("scale"); axpy = try k("axpy"); addBias = try k("add_bias")
        scaleMatrix = try k("scale_matrix"); dropout = try k("dropout")
        add = try k("add"); copyBlock = try k("copy_block"); reluRows = try k("relu_rows"); reluBackwardRows = try k("relu_backward_rows")
        im2col = try k("im2col"); col2imAdd = try k("col2im_add")
        maxPool = try k("max_pool"); maxPoolBackward = try k("max_pool_backward")
        avgPool = try k("avg_pool"); avgPoolBackward = try k("avg_pool_backward")
        globalAvgPool = try k("global_avg_pool"); globalAvgPoolBackward = try k("global_avg_pool_backward")
        columnSumPartial = try k("column_sum_partial"); columnSqdevPartial = try k("column_sqdev_partial")
        batchNormBackwardPartial = try k("batch_norm_backward_partial")
        biasGradientFinish = try k("bias_gradient_finish"); columnMeanFinish = try k("column_mean_finish")
        batchNormBackwardFinish = try k("batch_norm_backward_finish"); batchNormBackwardDx = try k("batch_norm_backward_dx")
        batchNormApply = try k("batch_norm_apply"); batchNormUpdateRunning = try k("batch_norm_update_running")
        softmaxCrossEntropy = try k("softmax_cross_entropy")
        sigmoidBinaryCrossEntropy = try k("sigmoid_binary_cross_entropy"); softmax = try k("softmax")
        sgd = try k("sgd"); sgdMomentum = try k("sgd_momentum"); adam = try k("adam"); rmsprop = try k("rmsprop")
        depthwiseConv = try k("depthwise_conv"); depthwiseConvBackwardData = try k("depthwise_conv_backward_data")
        depthwiseConvBackwardFilterPartial = try k("depthwise_conv_backward_filter_partial")
        pointwise = try k("pointwise"); pointwiseBackward = try k("pointwise_backward")
        layerNorm = try k("layer_norm"); layerNormBackwardDx = try k("layer_norm_backward_dx")
        layerNormBackwardParamsPartial = try k("layer_norm_backward_params_partial")
        channelScale = try k("channel_scale"); channelScaleGradientPartial = try k("channel_scale_gradient_partial")
    }
}

/// Creates every kernel of a built program.
func createKernels(in program: cl_program, device: cl_device_id, deviceName: String) throws -> [CLKernel] {
    var count: cl_uint = 0
    try check(clCreateKernelsInProgram(program, 0, nil, &count), call: "clCreateKernelsInProgram", device: deviceName)
    var kernels = [cl_kernel?](repeating: nil, count: Int(count))
    try check(clCreateKernelsInProgram(program, count, &kernels, nil), call: "clCreateKernelsInProgram", device: deviceName)
    return kernels.compactMap { kernel in
        guard let kernel else { return nil }
        let name = OpenCLRuntime.infoString {
            clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), $0, $1, $2)
        }
        var maxSize = 0
        _ = clGetKernelWorkGroupInfo(kernel, device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                     MemoryLayout<Int>.size, &maxSize, nil)
        return CLKernel(name: name, kernel: kernel, localSize: powerOfTwo(atMost: min(256, max(maxSize, 1))),
                        maxWorkGroupSize: maxSize)
    }
}

/// The largest power of two <= n (n >= 1).
func powerOfTwo(atMost n: Int) -> Int {
    var p = 1
    while p * 2 <= n { p *= 2 }
    return p
}

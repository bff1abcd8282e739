import VGGTLTensors

/// Layer normalisation, channel scaling and the newer activations on OpenCL (Kernels/layernorm.cl,
/// Kernels/activation.cl).
extension OpenCLDevice {
    /// The work-group size the row kernels were compiled for (-DWG).
    private var rowGroup: Int { reductionTC * reductionRL }

    public func pointwise(_ f: PointwiseFunction, _ x: DeviceBuffer, _ y: DeviceBuffer, count: Int) {
        launch(k.pointwise, count, f.rawValue, mem(x), mem(y), count)
    }

    public func pointwiseBackward(_ f: PointwiseFunction, _ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, count: Int) {
        launch(k.pointwiseBackward, count, f.rawValue, mem(x), mem(dy), mem(dx), count)
    }

    public func layerNorm(_ x: DeviceBuffer, _ y: DeviceBuffer, rows: Int, channels: Int, gamma: DeviceBuffer, beta: DeviceBuffer,
                          epsilon: Float, mean: DeviceBuffer, invStd: DeviceBuffer) {
        guard rows > 0, channels > 0 else { return }
        enqueue(k.layerNorm, global: [rows * rowGroup], local: [rowGroup],
                [mem(x), mem(y), channels, mem(gamma), mem(beta), epsilon, mem(mean), mem(invStd)])
    }

    public func layerNormBackward(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dx: DeviceBuffer, rows: Int, channels: Int,
                                  mean: DeviceBuffer, invStd: DeviceBuffer, gamma: DeviceBuffer,
                                  dgamma: DeviceBuffer, dbeta: DeviceBuffer) {
        guard rows > 0, channels > 0 else { return }
        let (chunks, rowsPerChunk) = chunking(rows, columns: channels)
        guard let partialGamma = scratchBuffer(0, count: chunks * channels),
              let partialBeta = scratchBuffer(1, count: chunks * channels) else { return }
        launch(k.layerNormBackwardParamsPartial, chunks * channels, mem(x), mem(dy), rows, channels, mem(mean), mem(invStd),
               chunks, rowsPerChunk, partialGamma, partialBeta)
        launch(k.biasGradientFinish, channels, partialGamma, chunks, channels, mem(dgamma), false)
        launch(k.biasGradientFinish, channels, partialBeta, chunks, channels, mem(dbeta), false)
        enqueue(k.layerNormBackwardDx, global: [rows * rowGroup], local: [rowGroup],
                [mem(x), mem(dy), mem(dx), channels, mem(mean), mem(invStd), mem(gamma)])
    }

    public func channelScale(_ x: DeviceBuffer, _ s: DeviceBuffer, _ y: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let count = batch * pixels * channels
        launch(k.channelScale, count, mem(x), mem(s), mem(y), pixels, channels, count)
    }

    public func channelScaleGradient(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ ds: DeviceBuffer, batch: Int, pixels: Int, channels: Int) {
        let columns = batch * channels
        guard columns > 0 else { return }
        let (chunks, pixelsPerChunk) = chunking(pixels, columns: columns)
        guard let partial = scratchBuffer(0, count: chunks * columns) else { return }
        launch(k.channelScaleGradientPartial, chunks * columns, mem(x), mem(dy), batch, pixels, channels, chunks, pixelsPerChunk, partial)
        launch(k.biasGradientFinish, columns, partial, chunks, columns, mem(ds), false)
    }
}

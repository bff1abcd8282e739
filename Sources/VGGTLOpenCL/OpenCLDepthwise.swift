import VGGTLTensors

/// Depthwise convolution on OpenCL (Kernels/depthwise.cl): one work item per output (forward)
/// or input (backward data) element; the kernel gradient in two launches, per-chunk partial sums
/// over output rows and their total.
extension OpenCLDevice {
    public func depthwiseConv(_ x: DeviceBuffer, _ w: DeviceBuffer, bias: DeviceBuffer?, _ y: DeviceBuffer, _ g: WindowGeometry) {
        // Without a bias the kernel gets w as a stand-in buffer that it does not read.
        launch(k.depthwiseConv, g.outPixels * g.inC, mem(x), mem(w), mem(bias ?? w), bias != nil, mem(y),
               g.batch, g.inH, g.inW, g.inC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW)
    }

    public func depthwiseConvBackwardData(_ dy: DeviceBuffer, _ w: DeviceBuffer, _ dx: DeviceBuffer, _ g: WindowGeometry) {
        launch(k.depthwiseConvBackwardData, g.inCount, mem(dy), mem(w), mem(dx),
               g.batch, g.inH, g.inW, g.inC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW)
    }

    public func depthwiseConvBackwardFilter(_ x: DeviceBuffer, _ dy: DeviceBuffer, _ dw: DeviceBuffer, _ g: WindowGeometry) {
        let taps = g.kH * g.kW * g.inC, rows = g.batch * g.outH
        let (chunks, rowsPerChunk) = chunking(rows, columns: taps)
        guard let partial = scratchBuffer(0, count: chunks * taps) else { return }
        launch(k.depthwiseConvBackwardFilterPartial, chunks * taps, mem(x), mem(dy), partial,
               g.batch, g.inH, g.inW, g.inC, g.kH, g.kW, g.strideH, g.strideW, g.padTop, g.padLeft, g.outH, g.outW,
               chunks, rowsPerChunk)
        launch(k.biasGradientFinish, taps, partial, chunks, taps, mem(dw), false)
    }

    /// Splits `rows` into chunks for a column sum whose work items are (chunk, column): enough
    /// items to fill the device (about 2048 per compute unit), at most 1024 chunks.
    func chunking(_ rows: Int, columns: Int) -> (chunks: Int, rowsPerChunk: Int) {
        let wanted = max(1, info.computeUnits * 2048 / max(columns, 1))
        let target = max(1, min(wanted, 1024, rows))
        let rowsPerChunk = max(1, (rows + target - 1) / target)
        return (max(1, (rows + rowsPerChunk - 1) / rowsPerChunk), rowsPerChunk)
    }
}

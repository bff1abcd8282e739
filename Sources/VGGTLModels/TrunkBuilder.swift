import VGGTLTensors
import VGGTLNN

/// Adds a trunk's layers to a graph, recording each layer's stage and numbering unnamed layers
/// as a fresh Keras session does (conv2d, conv2d_1, ..., batch_normalization, ...).
public struct TrunkBuilder {
    public let graph: Graph
    public let device: Device
    public var rng: SeededGenerator
    public let batchNormMomentum: Float
    /// Stage of the layers being added.
    public var stage = ""
    /// The model's input (height, width, channels) when known: a trunk whose layers depend on
    /// the sizes inside it (Keras' `correct_pad` before MobileNetV2's strided depthwise
    /// convolutions) reads them with `shape(of:)`.
    public var inputShape: [Int]?
    public private(set) var stageOf: [String: String] = [:]
    private var counters: [String: Int] = [:]
    /// Channels of each node's output, for the next layer's kernel shape.
    private var channelsOf: [Graph.Node: Int] = [:]

    public init(graph: Graph, device: Device, seed: SeededGenerator, batchNormMomentum: Float, inputChannels: Int) {
        self.graph = graph; self.device = device; rng = seed; self.batchNormMomentum = batchNormMomentum
        channelsOf[graph.output] = inputChannels
    }

    /// Keras' automatic name for the next unnamed layer of a kind: "conv2d", then "conv2d_1", ...
    public mutating func autoName(_ base: String) -> String {
        let k = counters[base, default: 0]
        counters[base] = k + 1
        return k == 0 ? base : "\(base)_\(k)"
    }

    public func channels(_ node: Graph.Node) -> Int { channelsOf[node]! }

    /// A node's output shape for one image of `inputShape`; nil when the input size is not known.
    public func shape(of node: Graph.Node) throws -> [Int]? {
        guard let inputShape else { return nil }
        return try graph.outputShape([1] + inputShape, of: node)
    }

    @discardableResult
    public mutating func add(_ layer: Layer, _ inputs: [Graph.Node], channels: Int) -> Graph.Node {
        let node = graph.add(layer, inputs: inputs)
        stageOf[layer.name] = stage
        channelsOf[node] = channels
        return node
    }

    public mutating func conv(_ name: String, _ x: Graph.Node, filters: Int, kernel: (Int, Int), strides: (Int, Int) = (1, 1),
                              padding: Padding = .same, useBias: Bool) throws -> Graph.Node {
        let c = try Conv2D(name, inChannels: channels(x), filters: filters, kernelSize: kernel, strides: strides, padding: padding,
                           activation: .linear, useBias: useBias, on: device, rng: &rng)
        return add(c, [x], channels: filters)
    }

    public mutating func batchNorm(_ name: String, _ x: Graph.Node, epsilon: Float, scale: Bool = true) throws -> Graph.Node {
        let bn = try BatchNormalization(name, channels: channels(x), momentum: batchNormMomentum, epsilon: epsilon, scale: scale, on: device)
        return add(bn, [x], channels: channels(x))
    }

    public mutating func relu(_ name: String, _ x: Graph.Node) -> Graph.Node { add(ReLU(name), [x], channels: channels(x)) }

    public mutating func layer(_ layer: Layer, _ x: Graph.Node) -> Graph.Node { add(layer, [x], channels: channels(x)) }
}

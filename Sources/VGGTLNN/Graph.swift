import VGGTLTensors

/// A network: layers on a directed acyclic graph, one node per layer, built in topological order
/// (a node's inputs exist before it). A chain of layers (VGG16, a head) is the simplest graph;
/// ResNet50's shortcuts (Add) and InceptionV3's branches (Concatenate) are others.
///
/// Forward runs the nodes the requested output needs, in order. Backward runs in reverse order
/// and only where a gradient is needed: nodes with a trainable parameter and everything after
/// them, so a frozen trunk costs no gradient work; a tensor read by several nodes gets the sum
/// of their gradients. Memory (activations, gradients, scratch) is planned by liveness per kind
/// of step (`MemoryPlan`) and reused: steady-state steps allocate no device memory.
public final class Graph {
    /// A node: the network's input (index 0) or a layer's output.
    public struct Node: Hashable, Sendable {
        public let index: Int
        package init(index: Int) { self.index = index }
    }

    package struct Entry {
        package let layer: Layer?
        package let inputs: [Int]
    }

    package private(set) var entries: [Entry] = [Entry(layer: nil, inputs: [])]
    /// The node `forward` returns by default and `backward` starts from: the last one added.
    public private(set) var output = Node(index: 0)
    /// The network's input.
    public var input: Node { Node(index: 0) }
    /// `.separate` gives every value its own buffer (a reference for tests).
    public var memoryPolicy: MemoryPolicy = .planned { didSet { plans = [:] } }
    /// Backward also computes the gradient of the network's input (`inputGradient`): gradient
    /// checks, saliency.
    public var computesInputGradient = false { didSet { plans = [:] } }

    private var names: [String: Node] = [:]
    private var plans: [PlanKey: MemoryPlan] = [:]
    private var shapeCache: [[Int]: [[Int]]] = [:]
    private let pool = BufferPool()
    /// Called with each value a forward computes, and whether it shares storage with an input
    /// (a view or an in-place layer): `--verify` perturbs values to estimate float32 rounding.
    package var forwardObserver: ((Tensor, _ sharesInputStorage: Bool) throws -> Void)?
    /// The last forward: its plan (nil before one) and context, values, and whether backward may follow.
    private var current: (key: PlanKey, plan: MemoryPlan, context: StepContext)?
    private var values: [Tensor?] = []

    public init() {}

    /// A chain: each layer takes the previous one's output.
    public convenience init(_ layers: [Layer]) {
        self.init()
        for l in layers { add(l) }
    }

    /// Adds `layer` taking `inputs` (default: the current output) and makes it the output.
    @discardableResult
    public func add(_ layer: Layer, _ inputs: Node...) -> Node { add(layer, inputs: inputs) }

    @discardableResult
    public func add(_ layer: Layer, inputs: [Node]) -> Node {
        let inputs = inputs.isEmpty ? [output] : inputs
        precondition(inputs.allSatisfy { $0.index < entries.count }, "layer \(layer.name): an input node is not in this graph")
        precondition(layer.inputArity.contains(inputs.count), "layer \(layer.name) takes \(layer.inputArity) inputs, got \(inputs.count)")
        precondition(names[layer.name] == nil, "two layers named \(layer.name)")
        precondition(!entries.contains { $0.layer === layer }, "layer \(layer.name) added twice")
        entries.append(Entry(layer: layer, inputs: inputs.map(\.index)))
        output = Node(index: entries.count - 1)
        names[layer.name] = output
        plans = [:]; shapeCache = [:]; current = nil
        return output
    }

    /// Every layer, in the order added.
    public var layers: [Layer] { entries.compactMap(\.layer) }
    public func layer(at node: Node) -> Layer? { entries[node.index].layer }
    public func inputs(of node: Node) -> [Node] { entries[node.index].inputs.map(Node.init) }
    public func node(named name: String) -> Node? { names[name] }
    public func layer(named name: String) -> Layer? { names[name].flatMap { layer(at: $0) } }
    /// Every node but the input, in order.
    public var nodes: [Node] { (1..<entries.count).map(Node.init) }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }

    /// Every node's output shape (the input's first) for an input shape.
    public func shapes(_ input: [Int]) throws -> [[Int]] {
        if let s = shapeCache[input] { return s }
        var s = [input]
        for e in entries.dropFirst() { s.append(try e.layer!.outputShape(inputs: e.inputs.map { s[$0] })) }
        shapeCache[input] = s
        return s
    }

    public func outputShape(_ input: [Int], of node: Node? = nil) throws -> [Int] {
        try shapes(input)[(node ?? output).index]
    }

    // MARK: - Running

    struct PlanKey: Hashable {
        var input: [Int]
        var target: Int
        var training: Bool
        var withBackward: Bool
        var memory: [LayerMemory]
        var trainable: [Bool]
        var inputGradient: Bool
    }

    /// The output of `node` (default: the network's output) for input `x`. In a training
    /// `context`, layers train (batch statistics, dropout) and the step keeps what `backward`
    /// needs; every layer gets `context`, with the epilogue the plan fused into it.
    public func forward(_ x: Tensor, _ context: StepContext, upTo node: Node? = nil) throws -> Tensor {
        let target = (node ?? output).index
        let shapes = try shapes(x.shape)
        let training = context.isTraining
        let key = PlanKey(
            input: x.shape, target: target, training: training, withBackward: training && target == output.index,
            memory: entries.indices.map { i in entries[i].layer?.memory(inputs: entries[i].inputs.map { shapes[$0] }, context: context) ?? LayerMemory() },
            trainable: entries.map { $0.layer?.parameters.contains(where: \.trainable) ?? false }, inputGradient: computesInputGradient)
        let plan = try plan(for: key, shapes: shapes, context: context)
        try pool.prepare(plan.bufferFloats, on: x.device)
        current = nil; inputGradient = nil
        values = Array(repeating: nil, count: entries.count)
        values[0] = x
        for step in plan.forward {
            let n = step.node, e = entries[n]
            var nodeContext = context
            nodeContext.epilogue = step.epilogue
            nodeContext.appliedByInput = step.fusedIntoInput
            values[n] = try e.layer!.forward(inputs: e.inputs.map { values[$0]! }, into: step.out.map { try tensor($0, plan) }, context: nodeContext)
            if let forwardObserver {
                try forwardObserver(values[n]!, e.inputs.contains { values[$0]!.buffer === values[n]!.buffer })
            }
        }
        current = (key, plan, context)
        return values[target]!
    }

    /// Backpropagates dL/d(output) from the last forward (which must have been a training
    /// forward of the whole network). `gradientsReady` is called with each layer's trainable
    /// parameters as soon as their gradients are final, in backward order (data-parallel
    /// training starts reducing them while backward continues).
    public func backward(_ dy: Tensor, gradientsReady: (([Parameter]) -> Void)? = nil) throws {
        guard let (key, plan, context) = current, key.withBackward else {
            throw VGGTLError.invalidArgument("backward needs a training forward of the whole network first")
        }
        guard dy.shape == values[key.target]!.shape else {
            throw VGGTLError.shapeMismatch(what: "gradient of the network output", expected: values[key.target]!.shape, got: dy.shape)
        }
        func t(_ s: MemoryPlan.Slot) throws -> Tensor {
            s.root == plan.externalDy ? Tensor(view: dy.buffer, shape: s.shape, on: dy.device, offset: dy.offset + s.offset, rowStride: s.rowStride)
                                      : try tensor(s, plan)
        }
        for step in plan.backward {
            switch step {
            case let .layer(n, dySlot, targets, dyIsDead, scratch):
                let layer = entries[n].layer!
                let g = GradientTargets(inputs: try targets.map { try $0.map(t) }, dyIsDead: dyIsDead, scratch: try scratch.map { try t($0).buffer })
                try layer.backward(try t(dySlot), g, context: context)
                if let ready = gradientsReady {
                    let trainable = layer.parameters.filter(\.trainable)
                    if !trainable.isEmpty { ready(trainable) }
                }
            case let .copy(from, to):
                let (a, b) = (try t(from), try t(to))
                a.device.copyBlock(a.buffer, BlockLayout(offset: a.offset, rowStride: a.rowStride), to: b.buffer,
                                   BlockLayout(offset: b.offset, rowStride: b.rowStride), outer: 1, rows: a.rows, cols: a.rowLength)
            case let .accumulate(from, into):
                let (a, b) = (try t(from), try t(into))
                a.device.axpy(alpha: 1, a.buffer, b.buffer, count: a.count)
            }
        }
        inputGradient = try plan.inputGradient.map(t)
    }

    /// dL/d(input) of the last backward, when `computesInputGradient`; valid until the next step.
    public private(set) var inputGradient: Tensor?

    /// A planned slot as a tensor on the pool's buffers.
    private func tensor(_ s: MemoryPlan.Slot, _ plan: MemoryPlan) throws -> Tensor {
        let r = plan.roots[s.root]
        precondition(!r.external, "external slot without its tensor")
        return Tensor(view: pool.buffers[r.buffer]!, shape: s.shape, on: pool.device!, offset: s.offset, rowStride: s.rowStride)
    }

    /// The plan for `key` (made once, then reused): `context` is the step's, which decided `key`.
    private func plan(for key: PlanKey, shapes: [[Int]], context: StepContext) throws -> MemoryPlan {
        if let p = plans[key] { return p }
        let nodes = entries.indices.map { i in
            MemoryPlanner.Node(layer: entries[i].layer, inputs: entries[i].inputs, shape: shapes[i], memory: key.memory[i], trainable: key.trainable[i])
        }
        let p = MemoryPlanner.plan(nodes: nodes, target: key.target, withBackward: key.withBackward, inputGradient: key.inputGradient,
                                   policy: memoryPolicy, context: context)
        if plans.count >= 8 { plans = [:] }
        plans[key] = p
        return p
    }

    // MARK: - Memory

    /// The last forward's plan in words: each layer's output (its buffer, "in place over" or
    /// "view of" its input, or "channels a..<b of" a Concatenate), then the backward's steps.
    public func planDescription() -> String {
        guard let (_, plan, _) = current else { return "no forward yet" }
        func name(_ n: Int) -> String { entries[n].layer?.name ?? "input" }
        func slot(_ s: MemoryPlan.Slot) -> String {
            let r = plan.roots[s.root]
            let place = r.external ? "external" : "buffer \(r.buffer)"
            return s.plain ? place : "\(place) +\(s.offset) stride \(s.rowStride)"
        }
        var out: [String] = []
        var rootOwner: [Int: Int] = [:]
        for step in plan.forward {
            let n = step.node, o = step.out
            if step.fusedIntoInput { out.append("forward \(name(n)): fused into \(name(entries[n].inputs[0]))"); continue }
            if let o {
                let first = rootOwner[o.root]
                rootOwner[o.root] = rootOwner[o.root] ?? n
                out.append("forward \(name(n)): \(slot(o))" + (first.map { " (shares \(name($0))'s root)" } ?? ""))
            } else {
                out.append("forward \(name(n)): view of its input")
            }
        }
        for step in plan.backward {
            switch step {
            case let .layer(n, dy, targets, dead, scratch):
                out.append("backward \(name(n)): dy \(slot(dy))\(dead ? " (dead)" : ""), dx " + targets.map { $0.map(slot) ?? "-" }.joined(separator: ", ")
                           + (scratch.map { ", scratch \(slot($0))" } ?? ""))
            case let .copy(from, to): out.append("copy \(slot(from)) -> \(slot(to))")
            case let .accumulate(from, into): out.append("add \(slot(from)) into \(slot(into))")
            }
        }
        out.append("\(plan.bufferFloats.count) buffers, \(plan.bytes) bytes, \(plan.gradientBytes) in buffers backward uses")
        return out.joined(separator: "\n")
    }

    /// Device bytes the network's planned buffers hold (activations, gradients, scratch; not
    /// parameters, their gradients or optimizer state).
    public var memoryBytes: Int { pool.bytes }
    /// The last forward's plan: its buffers' bytes, and of those the buffers only its backward
    /// uses (gradients, temporaries, scratch that share no buffer with an activation).
    public var lastPlanBytes: (total: Int, gradients: Int)? { current.map { ($0.plan.bytes, $0.plan.gradientBytes) } }
}

/// Keras' Sequential: a chain of layers is a graph (`Graph([layers])`).
public typealias Sequential = Graph

/// The device buffers of a network's memory plans, shared by all its plans (a training step's and
/// an evaluation's): each grows to the largest size a plan asks of it, once.
final class BufferPool {
    private(set) var buffers: [DeviceBuffer?] = []
    private(set) weak var device: Device?

    func prepare(_ floats: [Int], on device: Device) throws {
        if self.device !== device { buffers = []; self.device = device }
        for (i, n) in floats.enumerated() {
            if i == buffers.count { buffers.append(nil) }
            if let b = buffers[i], b.count >= n { continue }
            buffers[i] = nil  // free before allocating the larger one
            buffers[i] = try device.allocate(n, what: "network buffer \(i) (\(n) floats)")
        }
    }

    var bytes: Int { buffers.reduce(0) { $0 + ($1?.count ?? 0) } * MemoryLayout<Float>.size }
}

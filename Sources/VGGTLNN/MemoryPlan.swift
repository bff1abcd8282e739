/// How a network's memory is laid out for one kind of step (input shape, training or not,
/// trainable flags, layer modes): every forward value and every gradient is a view of a *root*,
/// each root lives over an interval of the step's timeline (forward layers, then backward
/// layers), and roots whose intervals do not overlap share one device buffer. Computed once per
/// kind of step; the buffers are allocated at their final size before the first such step and
/// reused after, so steady-state steps allocate no device memory.
///
/// It knows layers only by what they say of themselves (`LayerMemory`, `backwardScratch`).
/// What it plans, in both passes:
/// - Forward: a layer's output gets its own root, or overwrites its input (ReLU, BatchNormalization
///   at inference, Add, Dropout) when nothing reads that input later, or is a view of its input
///   (Flatten), or a channel slice of a Concatenate's output (so concatenating copies nothing).
///   Values the backward reads (a convolution's input, a ReLU's output) live until that layer's
///   backward; others die after their last forward reader, so frozen trunks hold almost nothing.
/// - Backward: a node's output gradient is a root written by its first consumer; further
///   consumers (fan-out in forward is fan-in here) write into a temporary that is added to it.
///   Add, Flatten and Concatenate pass dy (or a channel slice of it) on without a copy; a
///   gradient that nothing reads afterwards may be overwritten in place (the ReLU mask, ReLU and
///   BatchNormalization input gradients).
struct MemoryPlan {
    /// A planned tensor: `shape` stored in root `root` from element `offset`, rows `rowStride` apart.
    struct Slot: Equatable {
        var root: Int
        var shape: [Int]
        var offset = 0
        var rowStride: Int
        var count: Int { shape.reduce(1, *) }
        var dense: Bool { rowStride == (shape.last ?? 1) || count <= (shape.last ?? 1) }
        /// Dense from element 0: usable by every primitive.
        var plain: Bool { offset == 0 && dense }
    }

    struct Root {
        var floats: Int
        var first: Int, last: Int
        /// The network's input (forward) or the caller's dy (backward): not planned memory.
        var external = false
        /// Written during backward (gradients, scratch): reported apart.
        var backward = false
        /// The buffer it is assigned to.
        var buffer = -1
    }

    enum BackwardStep {
        case layer(node: Int, dy: Slot, targets: [Slot?], dyIsDead: Bool, scratch: Slot?)
        /// A view copied into a plain root (a strided gradient for a layer that needs it dense,
        /// or a shared gradient made private before something is added to it).
        case copy(from: Slot, to: Slot)
        /// into += from (both plain).
        case accumulate(from: Slot, into: Slot)
    }

    var roots: [Root] = []
    /// Forward steps in order: node and its output slot (nil: the layer returns a view).
    var forward: [ForwardStep] = []

    struct ForwardStep {
        var node: Int
        var out: Slot?
        /// The layer applies the following activation itself (`LayerMemory.epilogues`) ...
        var epilogue = Activation.linear
        /// ... and that activation's layer only takes the result.
        var fusedIntoInput = false
    }
    var backward: [BackwardStep] = []
    /// Floats of each buffer.
    var bufferFloats: [Int] = []
    /// Buffers that hold a backward root (gradients, temporaries, scratch), and those that hold
    /// nothing else.
    var backwardBuffers: Set<Int> = []
    var forwardBuffers: Set<Int> = []
    /// Root of the caller's dy, when the plan has a backward.
    var externalDy: Int?
    /// The gradient of the network's input, when asked for.
    var inputGradient: Slot?

    var bytes: Int { bufferFloats.reduce(0, +) * MemoryLayout<Float>.size }
    /// Bytes of the buffers only backward uses: what training needs beyond the activations.
    var gradientBytes: Int { backwardBuffers.subtracting(forwardBuffers).reduce(0) { $0 + bufferFloats[$1] } * MemoryLayout<Float>.size }
}

public enum MemoryPolicy: Sendable {
    /// Buffers shared by liveness, layers in place, views instead of copies.
    case planned
    /// Every value its own buffer, nothing in place, strided views copied: the reference the
    /// planned memory is tested against (bit-identical results).
    case separate
}

/// Builds a MemoryPlan. The graph is given as nodes in topological order (node 0 is the input).
struct MemoryPlanner {
    struct Node {
        let layer: Layer?
        let inputs: [Int]
        let shape: [Int]
        let memory: LayerMemory
        /// The layer has a trainable parameter.
        let trainable: Bool
    }

    let nodes: [Node]
    let target: Int
    let withBackward: Bool
    /// Backward also computes the gradient of the network's input.
    let inputGradient: Bool
    let policy: MemoryPolicy
    /// The step's context, for the layers' backward scratch.
    let context: StepContext

    private var plan = MemoryPlan()
    /// Forward value of each node.
    private var value: [MemoryPlan.Slot?]
    /// Forward values created on each root.
    private var valuesOn: [[Int]] = []
    private var time: [Int]
    private var reach: [Bool]
    private var consumers: [[(node: Int, input: Int)]]
    /// Some trainable parameter at or before the node: its backward runs and its output needs a gradient.
    private var below: [Bool]
    /// Backward step time of each node that runs.
    private var backwardTime: [Int]
    private var placed: [Int: (concat: Int, channels: Range<Int>)] = [:]

    static func plan(nodes: [Node], target: Int, withBackward: Bool, inputGradient: Bool, policy: MemoryPolicy,
                     context: StepContext) -> MemoryPlan {
        var p = MemoryPlanner(nodes: nodes, target: target, withBackward: withBackward, inputGradient: inputGradient, policy: policy,
                              context: context)
        p.run()
        return p.plan
    }

    private init(nodes: [Node], target: Int, withBackward: Bool, inputGradient: Bool, policy: MemoryPolicy, context: StepContext) {
        self.nodes = nodes; self.target = target; self.withBackward = withBackward; self.inputGradient = inputGradient; self.policy = policy
        self.context = context
        let n = nodes.count
        value = Array(repeating: nil, count: n)
        time = Array(repeating: -1, count: n)
        reach = Array(repeating: false, count: n)
        consumers = Array(repeating: [], count: n)
        below = Array(repeating: false, count: n)
        backwardTime = Array(repeating: -1, count: n)
    }

    private var order: [Int] { (1..<nodes.count).filter { reach[$0] } }
    private var planned: Bool { policy == .planned }

    private mutating func run() {
        reach[target] = true
        for n in stride(from: target, through: 0, by: -1) where reach[n] { for p in nodes[n].inputs { reach[p] = true } }
        for (t, n) in order.enumerated() {
            time[n] = t
            for (i, p) in nodes[n].inputs.enumerated() { consumers[p].append((n, i)) }
        }
        if withBackward {
            below[0] = inputGradient
            for n in order { below[n] = nodes[n].trainable || nodes[n].inputs.contains { below[$0] } }
            let base = order.count
            for (k, n) in order.reversed().filter({ below[$0] }).enumerated() { backwardTime[n] = base + 3 * k + 1 }
        }
        placeConcatenateInputs()
        planForward()
        if withBackward { planBackward() }
        assignBuffers()
    }

    // MARK: - Forward

    /// Producers that write straight into their channels of a concatenation's output (a layer
    /// whose inputs are channels of its output, `InputGradients.channels`): slice writers whose
    /// only reader is that layer.
    private mutating func placeConcatenateInputs() {
        guard planned else { return }
        for c in order.reversed() {
            guard case let .channels(ranges) = nodes[c].memory.inputGradients else { continue }
            for (i, p) in nodes[c].inputs.enumerated() where p != 0 && p != target {
                guard nodes[p].memory.writesChannelSlices, consumers[p].count == 1, !nodes[p].memory.outputIsInputView else { continue }
                placed[p] = (c, ranges[i])
            }
        }
    }

    private mutating func newRoot(_ floats: Int, at t: Int, backward: Bool = false, external: Bool = false) -> Int {
        plan.roots.append(MemoryPlan.Root(floats: max(floats, 1), first: t, last: t, external: external, backward: backward))
        valuesOn.append([])
        return plan.roots.count - 1
    }

    private mutating func use(_ root: Int, at t: Int) {
        plan.roots[root].first = min(plan.roots[root].first, t)
        plan.roots[root].last = max(plan.roots[root].last, t)
    }

    private func contiguous(_ root: Int, _ shape: [Int]) -> MemoryPlan.Slot {
        MemoryPlan.Slot(root: root, shape: shape, rowStride: shape.last ?? 1)
    }

    /// The last forward time at which value `v` is read (Int.max for the target, read after the step).
    private func lastForwardRead(_ v: Int) -> Int {
        v == target ? Int.max : consumers[v].map { time[$0.node] }.max() ?? time[v]
    }

    /// Some backward reads value `v` (a layer's input or its own output).
    private func hasBackwardReader(_ v: Int) -> Bool {
        guard withBackward else { return false }
        if below[v] && nodes[v].memory.backwardReadsOutput { return true }
        return consumers[v].contains { below[$0.node] && nodes[$0.node].memory.backwardReadsInputs }
    }

    /// Node `n` at time `t` may overwrite value `p`'s storage: nothing reads any value on that
    /// root after `t` or during backward.
    private func canOverwrite(_ p: Int, by n: Int) -> Bool {
        guard planned, p != 0, let s = value[p], s.plain, s.count == nodes[n].shape.reduce(1, *),
              !plan.roots[s.root].external else { return false }
        return valuesOn[s.root].allSatisfy { v in lastForwardRead(v) <= time[n] && !hasBackwardReader(v) }
    }

    /// The slot of node `n`'s output, created when first needed (a Concatenate's output is
    /// created by its first placed input).
    private mutating func outputSlot(_ n: Int, at t: Int) -> MemoryPlan.Slot {
        if let s = value[n] { return s }
        let s: MemoryPlan.Slot
        if let (c, channels) = placed[n] {
            let whole = outputSlot(c, at: t)
            var shape = whole.shape
            shape[shape.count - 1] = channels.count
            s = MemoryPlan.Slot(root: whole.root, shape: nodes[n].shape, offset: whole.offset + channels.lowerBound, rowStride: whole.rowStride)
            precondition(shape == nodes[n].shape, "placed \(nodes[n].shape) into \(shape)")
        } else {
            s = contiguous(newRoot(nodes[n].shape.reduce(1, *), at: t), nodes[n].shape)
        }
        value[n] = s
        valuesOn[s.root].append(n)
        return s
    }

    private mutating func planForward() {
        _ = newRoot(nodes[0].shape.reduce(1, *), at: 0, external: true)
        value[0] = contiguous(0, nodes[0].shape)
        valuesOn[0].append(0)
        for n in order {
            let t = time[n], m = nodes[n].memory
            var out: MemoryPlan.Slot?
            if value[n] != nil || placed[n] != nil {
                out = outputSlot(n, at: t)
            } else if m.outputIsInputView, let s = value[nodes[n].inputs[0]], s.dense {
                let v = MemoryPlan.Slot(root: s.root, shape: nodes[n].shape, offset: s.offset, rowStride: nodes[n].shape.last ?? 1)
                value[n] = v
                valuesOn[v.root].append(n)
            } else if let i = m.inPlaceInputs.first(where: { canOverwrite(nodes[n].inputs[$0], by: n) }) {
                let s = value[nodes[n].inputs[i]]!
                let v = contiguous(s.root, nodes[n].shape)
                value[n] = v
                valuesOn[v.root].append(n)
                out = v
            } else {
                out = outputSlot(n, at: t)
            }
            precondition(!(m.outputIsInputView && out != nil), "a view output needs a dense input")
            var step = MemoryPlan.ForwardStep(node: n, out: out)
            // An activation over its input's storage, when that input's layer can apply it while
            // writing and nothing else reads the input: one pass instead of two.
            if planned, let a = m.standaloneActivation, let o = out, let p = nodes[n].inputs.first, consumers[p].count == 1,
               nodes[p].memory.epilogues.contains(a), value[p] == o, let k = plan.forward.lastIndex(where: { $0.node == p }) {
                plan.forward[k].epilogue = a
                step.fusedIntoInput = true
            }
            plan.forward.append(step)
            for p in nodes[n].inputs { use(value[p]!.root, at: t) }
            use(value[n]!.root, at: t)
            if withBackward && below[n] {
                if m.backwardReadsInputs { for p in nodes[n].inputs { use(value[p]!.root, at: backwardTime[n]) } }
                if m.backwardReadsOutput { use(value[n]!.root, at: backwardTime[n]) }
            }
        }
        // The caller reads the output after the step (the trainer after backward and the update).
        use(value[target]!.root, at: Int.max / 2)
    }

    // MARK: - Backward

    private var gradient: [Int: MemoryPlan.Slot] = [:]
    /// Gradient slots on each root whose node has not run its backward yet.
    private var pending: [Int: Set<Int>] = [:]

    private mutating func newGradientRoot(_ shape: [Int], at t: Int) -> MemoryPlan.Slot {
        contiguous(newRoot(shape.reduce(1, *), at: t, backward: true), shape)
    }

    private mutating func setGradient(_ p: Int, _ s: MemoryPlan.Slot) {
        gradient[p] = s
        pending[s.root, default: []].insert(p)
    }

    /// Makes node p's gradient a plain root nobody else reads, so that something can be added to it.
    private mutating func makePrivate(_ p: Int, at t: Int) {
        let s = gradient[p]!
        if s.plain && !plan.roots[s.root].external && pending[s.root] == [p] { return }
        let fresh = newGradientRoot(nodes[p].shape, at: t)
        plan.backward.append(.copy(from: s, to: fresh))
        use(s.root, at: t)
        pending[s.root]?.remove(p)
        setGradient(p, fresh)
    }

    /// Adds a contribution that is a view of dy (routes .dy and .channels) to p's gradient.
    private mutating func contribute(_ p: Int, view: MemoryPlan.Slot, at t: Int) {
        let acceptsSlice = planned && nodes[p].memory.writesChannelSlices
        if gradient[p] == nil {
            if view.plain || acceptsSlice {
                setGradient(p, view)
            } else {
                let fresh = newGradientRoot(nodes[p].shape, at: t)
                plan.backward.append(.copy(from: view, to: fresh))
                use(view.root, at: t)
                setGradient(p, fresh)
            }
            return
        }
        makePrivate(p, at: t)
        var from = view
        if !view.plain {
            from = newGradientRoot(nodes[p].shape, at: t)
            plan.backward.append(.copy(from: view, to: from))
        }
        plan.backward.append(.accumulate(from: from, into: gradient[p]!))
        use(view.root, at: t); use(from.root, at: t); use(gradient[p]!.root, at: t)
    }

    /// The root of node n's output when its backward may write the input gradient there: a
    /// planned root that nothing reads after this backward.
    private func reusableOutput(of n: Int, at t: Int, besides dyRoot: Int) -> Int? {
        guard planned, nodes[n].memory.inputGradientOverOutput, nodes[n].inputs.count == 1, let v = value[n], v.plain,
              v.root != dyRoot, !plan.roots[v.root].external, plan.roots[v.root].last == t else { return nil }
        return v.root
    }

    private mutating func planBackward() {
        let dyRoot = newRoot(nodes[target].shape.reduce(1, *), at: order.count, backward: true, external: true)
        plan.externalDy = dyRoot
        setGradient(target, contiguous(dyRoot, nodes[target].shape))
        for n in order.reversed() where below[n] {
            let t = backwardTime[n]
            guard let dy = gradient[n] else { preconditionFailure("node \(n) runs backward without a gradient") }
            let m = nodes[n].memory, inputs = nodes[n].inputs
            let dyDead = planned && !plan.roots[dy.root].external && pending[dy.root] == [n]
            var targets = [MemoryPlan.Slot?](repeating: nil, count: inputs.count)
            var adds: [(temp: MemoryPlan.Slot, into: Int)] = []
            var routed: [(p: Int, view: MemoryPlan.Slot)] = []
            for (i, p) in inputs.enumerated() where below[p] {
                switch m.inputGradients {
                case .dy:
                    precondition(dy.dense, "a dy route over a channel slice")
                    routed.append((p, MemoryPlan.Slot(root: dy.root, shape: nodes[p].shape, offset: dy.offset, rowStride: nodes[p].shape.last ?? 1)))
                case .channels(let ranges):
                    routed.append((p, MemoryPlan.Slot(root: dy.root, shape: nodes[p].shape, offset: dy.offset + ranges[i].lowerBound,
                                                      rowStride: dy.rowStride)))
                case .computed(let inPlace):
                    if gradient[p] == nil {
                        if inPlace && i == 0 && dyDead && dy.plain && dy.count == nodes[p].shape.reduce(1, *) {
                            let s = contiguous(dy.root, nodes[p].shape)
                            setGradient(p, s)
                            targets[i] = s
                        } else if let out = reusableOutput(of: n, at: t, besides: dy.root) {
                            // The output's last reader is this backward, which is done with it
                            // before it writes dx: dx takes its storage.
                            plan.roots[out].floats = max(plan.roots[out].floats, nodes[p].shape.reduce(1, *))
                            let s = contiguous(out, nodes[p].shape)
                            setGradient(p, s)
                            targets[i] = s
                        } else {
                            let s = newGradientRoot(nodes[p].shape, at: t)
                            setGradient(p, s)
                            targets[i] = s
                        }
                    } else {
                        let temp = newGradientRoot(nodes[p].shape, at: t)
                        targets[i] = temp
                        adds.append((temp, p))
                    }
                }
            }
            let targetsDy = targets.contains { $0?.root == dy.root }
            let isDead = dyDead && !targetsDy
            let scratchFloats = nodes[n].layer!.backwardScratch(dy: dy.shape, inputGradients: targets.map { $0 != nil }, dyIsDead: isDead,
                                                                context: context)
            let scratch = scratchFloats > 0 ? MemoryPlan.Slot(root: newRoot(scratchFloats, at: t, backward: true), shape: [scratchFloats], rowStride: scratchFloats) : nil
            plan.backward.append(.layer(node: n, dy: dy, targets: targets, dyIsDead: isDead, scratch: scratch))
            use(dy.root, at: t)
            for s in targets.compactMap({ $0 }) { use(s.root, at: t) }
            pending[dy.root]?.remove(n)
            // After the layer: contributions that are views of dy, and temporaries to add.
            for (p, view) in routed { contribute(p, view: view, at: t + 1) }
            for (temp, p) in adds {
                makePrivate(p, at: t + 1)
                plan.backward.append(.accumulate(from: temp, into: gradient[p]!))
                use(temp.root, at: t + 1); use(gradient[p]!.root, at: t + 1)
            }
        }
        if inputGradient, let g = gradient[0] {
            plan.inputGradient = g
            use(g.root, at: Int.max / 2)
        }
    }

    // MARK: - Buffers

    /// Largest roots first, each into the first buffer whose roots' intervals it does not overlap
    /// (every buffer is at least as large, as roots come in decreasing size), else a new buffer.
    private mutating func assignBuffers() {
        let ids = plan.roots.indices.filter { !plan.roots[$0].external }
        var intervals: [[(Int, Int)]] = []
        for r in ids.sorted(by: { (plan.roots[$0].floats, $1) > (plan.roots[$1].floats, $0) }) {
            let (a, b) = (plan.roots[r].first, plan.roots[r].last)
            var chosen: Int?
            if planned {
                chosen = intervals.indices.first { i in intervals[i].allSatisfy { $0.1 < a || b < $0.0 } }
            }
            if let i = chosen {
                intervals[i].append((a, b))
            } else {
                intervals.append([(a, b)])
                plan.bufferFloats.append(plan.roots[r].floats)
                chosen = intervals.count - 1
            }
            plan.roots[r].buffer = chosen!
            if plan.roots[r].backward { plan.backwardBuffers.insert(chosen!) } else { plan.forwardBuffers.insert(chosen!) }
        }
    }
}

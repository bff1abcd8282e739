import VGGTLTensors
import VGGTLNN

/// Gradient accumulation (`--accumulate N`): the gradients of N batches summed before one
/// optimiser step, so that batch B x N fits the memory of batch B. Each micro-batch's backward
/// starts from a loss gradient scaled per sample (the sum of its samples' gradients, not their
/// mean), the sums are added here, and the step divides by all the samples it saw: the update
/// is the one of the big batch's mean loss. Layers overwrite their parameters' gradients on
/// every backward, so the running sums live in buffers of their own (one per trainable array,
/// on the device; nothing leaves it).
final class GradientAccumulator {
    private var sums: [ObjectIdentifier: Tensor] = [:]
    /// Samples whose gradients are in the sums (0: nothing accumulated since the last step).
    private(set) var samples = 0

    /// Adds the gradients the last backward left in `parameters` (sums over `count` samples).
    /// Not for the step's last micro-batch: its gradients stay where the optimiser reads them
    /// and get the earlier sums in `finish`.
    func add(_ parameters: [Parameter], count: Int) throws {
        for p in parameters {
            guard let g = p.grad else { continue }
            let d = g.device
            if samples == 0 {
                let s = try sum(for: p, like: g)
                d.copy(g.buffer, srcOffset: 0, to: s.buffer, dstOffset: 0, count: g.count)
            } else if let s = sums[ObjectIdentifier(p)] {
                d.axpy(alpha: 1, g.buffer, s.buffer, count: g.count)
            }
        }
        samples += count
    }

    /// Adds the earlier micro-batches' sums to the gradients of the step's last one, in
    /// `parameters` (a data-parallel step does it layer by layer, as backward finishes them,
    /// before they are reduced). `fresh` false: that batch had no readable image and ran no
    /// backward, so the gradients become the earlier sums alone.
    func addSums(to parameters: [Parameter], fresh: Bool = true) {
        guard samples > 0 else { return }
        for p in parameters {
            guard let g = p.grad, let s = sums[ObjectIdentifier(p)] else { continue }
            if fresh {
                g.device.axpy(alpha: 1, s.buffer, g.buffer, count: g.count)
            } else {
                g.device.copy(s.buffer, srcOffset: 0, to: g.buffer, dstOffset: 0, count: g.count)
            }
        }
    }

    /// Turns the gradients of the step's last micro-batch (sums over `count` samples; 0: it ran
    /// no backward) into the mean over every sample of the step, ready for the optimiser, and
    /// starts a new step.
    func finish(_ parameters: [Parameter], count: Int) {
        addSums(to: parameters, fresh: count > 0)
        let total = samples + count
        for p in parameters {
            guard let g = p.grad else { continue }
            g.device.scale(g.buffer, g.buffer, count: g.count, by: 1 / Float(max(total, 1)))
        }
        samples = 0
    }

    /// Forgets what was accumulated (a new stage, or a step that never ran).
    func reset() { samples = 0 }

    private func sum(for p: Parameter, like g: Tensor) throws -> Tensor {
        if let s = sums[ObjectIdentifier(p)], s.count == g.count { return s }
        let s = try Tensor(uninitialized: g.shape, on: g.device, what: "\(p.name) accumulated gradient")
        sums[ObjectIdentifier(p)] = s
        return s
    }
}

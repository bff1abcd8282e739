"""How the reference scripts choose every tensor (weightgen.py generates the values).

Random weights at initialisation make a deep ReLU + BatchNorm network a poor reference: a
float32 implementation's rounding flips ReLU masks whose pre-activation is within rounding of
0, and each flip changes gradients by up to 1e-2 relative (measured: torchvision/Keras-variant
float32 vs float64, 2.6e-1 worst, 2.8e-2 median over tensors in the training step). So:
  - gamma = 0.15 +- 0.05 and beta = +-(1 +- 0.1) (a quarter of the channels negative, i.e.
    switched off): BN outputs sit >= 4.5 standard deviations away from the ReLU kink. A
    BatchNormalization that feeds an Add (ResNet's *_0_bn, *_3_bn; torchvision's bn3,
    downsample.1) has positive beta only, so the residual stream's ReLU never switches off.
  - Keras' InceptionV3 has no gamma (scale=False), so beta alone must keep the kink away; its
    betas are calibrated and stored: per channel, from the normalised values of both the
    training-mode and the inference-mode forward of the reference batch, beta = -min + m (on)
    or -max - m (off, a quarter of the channels), m = 0.5 + 0.25 u.
  - moving mean/variance are calibrated: the batch statistics of a float64 training-mode
    forward (every other tensor as above), moving_mean = mean + 0.1 * std * r and
    moving_variance = var * (1 + 0.2 * r), r from the generator; they are stored in the dump.
  - kernels are r * sqrt(gain / fan_in) with gain 3 for ResNet50 (residual sums grow with He's
    6) and 6 for InceptionV3; biases r * 0.1; the input r.
Each dump lists every tensor with the scale/offset/signed it was generated with, so a reader
needs only weightgen's rule, not this policy.
"""
import numpy as np
import weightgen as wg

GAIN = {"resnet50": 3.0, "inceptionv3": 6.0}
GAMMA = (0.05, 0.15)               # (scale, offset)
BETA = (0.1, 1.0)


class Init:
    def __init__(self, family, model, global_seed=0, stored=None):
        self.family, self.model, self.global_seed = family, model, global_seed
        self.stored = dict(stored or {})

    def spec(self, name, shape, kind, layout, feeds_add=False, has_gamma=True):
        s = {"name": name, "shape": [int(d) for d in shape], "kind": kind, "layout": layout}
        if kind in ("moving_mean", "moving_variance") or (kind == "beta" and not has_gamma):
            if name in self.stored:
                s["stored"] = True
                return s
            # Before calibration only (the calibration pass replaces them before use).
            s.update(scale=0.1, offset=1.0 if kind == "moving_variance" else 0.0, signed=False, provisional=True)
            return s
        if kind == "kernel":
            scale, offset, signed = wg.kernel_scale(shape, layout, GAIN[self.model]), 0.0, False
        elif kind in ("bias", "input"):
            scale, offset, signed = (0.1 if kind == "bias" else 1.0), 0.0, False
        elif kind == "gamma":
            (scale, offset), signed = GAMMA, False
        elif kind == "beta":
            (scale, offset), signed = BETA, not feeds_add
        else:
            raise ValueError(kind)
        s.update(scale=float(np.float32(scale)), offset=float(np.float32(offset)), signed=bool(signed))
        return s

    def values(self, s):
        if s.get("stored"):
            v = self.stored[s["name"]]
            assert list(v.shape) == s["shape"], s["name"]
            return v
        return wg.tensor(s["name"], s["shape"], s["scale"], s["offset"], s["signed"], self.global_seed)

    def calibrate_beta(self, name, lo, hi):
        """A beta that keeps every normalised value of its channel (lo..hi, float64) at least
        0.5 away from the ReLU's kink: on for three channels in four, off for the rest."""
        n = lo.size
        u = (wg.unit(wg.seed_of(name, self.global_seed), n).astype(np.float64) + 1.0) / 2.0
        off = (wg.stream(wg.seed_of("sign:" + name, self.global_seed), n) >> np.uint64(62)) == np.uint64(0)
        m = 0.5 + 0.25 * u
        self.stored[name] = np.where(off, -hi - m, -lo + m).astype(np.float32)

    def calibrate(self, stats):
        """stats: {moving-mean tensor name: (moving-variance tensor name, batch mean, biased batch var)}
        (float64, from a training-mode forward)."""
        for mm_name, (mv_name, mean, var) in stats.items():
            n = mean.size
            rm = wg.unit(wg.seed_of(mm_name, self.global_seed), n).astype(np.float64)
            rv = wg.unit(wg.seed_of(mv_name, self.global_seed), n).astype(np.float64)
            self.stored[mm_name] = (mean + 0.1 * np.sqrt(var) * rm).astype(np.float32)
            self.stored[mv_name] = (var * (1.0 + 0.2 * rv)).astype(np.float32)

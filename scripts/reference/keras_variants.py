"""Keras' ResNet50 (v1) and InceptionV3, written independently in PyTorch from the
architecture (not from Keras' code), with Keras' layer names, Keras layouts for every weight
(HWIO kernels, (in, out) dense) and Keras' semantics: TensorFlow 'same' padding (the extra pad
of an even total goes bottom/right), average pooling that excludes the padding from its count,
BatchNormalization with Keras' epsilons and `scale=False` in InceptionV3. Computation is NCHW
inside; kernels are permuted at use. tf_check.py compares it with TensorFlow itself.
"""
import math
import torch
import torch.nn.functional as F


def relu_margin(z):
    """min |z|: how close the nearest pre-activation is to the ReLU's kink."""
    return float(z.abs().min())


def pool_margin(x, k, s):
    """min over windows whose max is > 0 of (largest - second largest): how close a max pool is
    to routing its gradient elsewhere (windows of zeros route nothing: they follow a ReLU)."""
    w = F.unfold(x.reshape(-1, 1, x.shape[2], x.shape[3]), k, stride=s)      # (N*C, k*k, L)
    top = w.topk(2, dim=1).values
    live = top[:, 0, :] > 0
    if not bool(live.any()):
        return float("inf")
    return float((top[:, 0, :] - top[:, 1, :])[live].min())


def safety(rec64, rec32):
    """Per recorded ReLU / max pool (float64 run, float32 run of the same forward): the margin
    of the float64 inputs over the largest float32 error of those inputs. A ReLU mask or a
    max-pool choice can only differ between the two when this is below 1; the reference is
    chosen so that it is far above (a float32 implementation's errors are all alike)."""
    out = []
    assert len(rec64) == len(rec32)
    for (kind, a, ks), (_, b, _) in zip(rec64, rec32):
        err = float((a - b).abs().max())
        err = max(err, 1e-12 * float(a.abs().max()))
        m = relu_margin(a) if kind == "relu" else pool_margin(a, *ks)
        if kind == "max_pool":
            err *= 2                      # both of the two largest values may move
        out.append((kind, m / err, m, err))
    return out


class KerasNet:
    """Parameters by Keras name, created on first use from the shared generator, plus the ops.

    bn_mode: "train" (batch statistics, recorded in self.stats) or "infer" (moving statistics).
    """

    def __init__(self, init, dtype=torch.float64):
        self.init, self.dtype = init, dtype
        self.P, self.specs, self.stats = {}, [], {}
        self.bn_mode = "infer"
        self.counters = {}
        self.margins = None      # a list to record ReLU / max-pool inputs into, when set
        self.pool_inputs = None  # a list to keep max-pool inputs (with their graph) in, when set

    def reset_names(self):
        self.counters = {}

    def auto(self, base):
        """Keras' per-class names for unnamed layers: conv2d, conv2d_1, ... (fresh session)."""
        k = self.counters.get(base, 0)
        self.counters[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def param(self, name, shape, kind, **policy):
        if name not in self.P:
            spec = self.init.spec(name, shape, kind, "keras", **policy)
            self.P[name] = torch.tensor(self.init.values(spec), dtype=self.dtype)
            self.specs.append(spec)
        t = self.P[name]
        assert list(t.shape) == list(shape), f"{name}: {list(t.shape)} vs {shape}"
        return t

    # --- ops (NCHW) ---
    @staticmethod
    def same_pads(size, k, s):
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2      # TF: the odd pixel goes after (bottom/right)

    def pad_same(self, x, kernel, strides):
        t, b = self.same_pads(x.shape[2], kernel[0], strides[0])
        l, r = self.same_pads(x.shape[3], kernel[1], strides[1])
        return F.pad(x, (l, r, t, b)), (t, b, l, r)

    def conv(self, x, name, filters, kernel, strides=(1, 1), padding="valid", use_bias=True):
        kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else (kernel, kernel)
        strides = tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)
        w = self.param(f"{name}/kernel", [kernel[0], kernel[1], x.shape[1], filters], "kernel")
        b = self.param(f"{name}/bias", [filters], "bias") if use_bias else None
        if padding == "same":
            x, _ = self.pad_same(x, kernel, strides)
        return F.conv2d(x, w.permute(3, 2, 0, 1), b, stride=strides)

    def bn(self, x, name, eps, scale=True, center=True, feeds_add=False):
        c = x.shape[1]
        gamma = self.param(f"{name}/gamma", [c], "gamma") if scale else None
        beta = self.param(f"{name}/beta", [c], "beta", feeds_add=feeds_add, has_gamma=scale) if center else None
        mm = self.param(f"{name}/moving_mean", [c], "moving_mean")
        mv = self.param(f"{name}/moving_variance", [c], "moving_variance")
        if self.bn_mode == "calibrate":
            return self.bn_calibrate(x, name, eps, gamma, beta)
        if self.bn_mode == "train":
            mean = x.mean(dim=(0, 2, 3))
            var = ((x - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))   # biased, as Keras normalises
            self.stats[name] = (mean.detach(), var.detach())
        else:
            mean, var = mm, mv
        y = (x - mean[None, :, None, None]) / torch.sqrt(var + eps)[None, :, None, None]
        if gamma is not None:
            y = y * gamma[None, :, None, None]
        if beta is not None:
            y = y + beta[None, :, None, None]
        return y

    def bn_calibrate(self, x, name, eps, gamma, beta):
        """Calibration pass (float64): x holds the batch twice, the training-mode path then the
        inference-mode path. Sets the moving statistics from the first half's batch statistics
        (refinit.Init.calibrate) and, for a BN without gamma, beta from both halves' normalised
        values so that every channel stays on one side of the ReLU with room to spare."""
        b = x.shape[0] // 2
        xa, xb = x[:b], x[b:]
        mean = xa.mean(dim=(0, 2, 3))
        var = ((xa - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
        mm_name, mv_name = f"{name}/moving_mean", f"{name}/moving_variance"
        self.init.calibrate({mm_name: (mv_name, mean.numpy(), var.numpy())})
        mm = torch.tensor(self.init.stored[mm_name], dtype=x.dtype)
        mv = torch.tensor(self.init.stored[mv_name], dtype=x.dtype)
        ya = (xa - mean[None, :, None, None]) / torch.sqrt(var + eps)[None, :, None, None]
        yb = (xb - mm[None, :, None, None]) / torch.sqrt(mv + eps)[None, :, None, None]
        if gamma is None and beta is not None:
            both = torch.cat([ya, yb])
            self.init.calibrate_beta(f"{name}/beta", both.amin(dim=(0, 2, 3)).numpy(), both.amax(dim=(0, 2, 3)).numpy())
            beta = torch.tensor(self.init.stored[f"{name}/beta"], dtype=x.dtype)
        y = torch.cat([ya, yb])
        if gamma is not None:
            y = y * gamma[None, :, None, None]
        if beta is not None:
            y = y + beta[None, :, None, None]
        return y

    def relu(self, x):
        if self.margins is not None:
            self.margins.append(("relu", x.detach().double(), None))
        return torch.clamp_min(x, 0)

    @staticmethod
    def zero_pad(x, p):
        return F.pad(x, (p, p, p, p))

    def max_pool_valid(self, x, k, s):
        if self.margins is not None:
            self.margins.append(("max_pool", x.detach().double(), (k, s)))
        if self.pool_inputs is not None:
            self.pool_inputs.append(x)
        return F.max_pool2d(x, k, s)

    def avg_pool_same_exclude_pad(self, x, k, s):
        xp, (t, b, l, r) = self.pad_same(x, (k, k), (s, s))
        sums = F.avg_pool2d(xp, k, s, divisor_override=1)
        ones = F.pad(torch.ones(1, 1, x.shape[2], x.shape[3], dtype=x.dtype), (l, r, t, b))
        counts = F.avg_pool2d(ones, k, s, divisor_override=1)
        return sums / counts

    def head(self, features, classes):
        """GlobalAveragePooling2D + Dense(classes), linear logits: the dumps' small head."""
        g = features.mean(dim=(2, 3))
        w = self.param("head_dense/kernel", [g.shape[1], classes], "kernel")
        b = self.param("head_dense/bias", [classes], "bias")
        return g @ w + b


# ---------------------------------------------------------------- ResNet50 (Keras, v1)
RESNET_EPS = 1.001e-5


def resnet50_trunk(net: KerasNet, x):
    x = net.zero_pad(x, 3)
    x = net.conv(x, "conv1_conv", 64, 7, 2)
    x = net.relu(net.bn(x, "conv1_bn", RESNET_EPS))
    x = net.max_pool_valid(net.zero_pad(x, 1), 3, 2)   # pads with 0 after a ReLU: same as -inf
    for stage, (filters, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=2):
        for blk in range(1, blocks + 1):
            name = f"conv{stage}_block{blk}"
            s = stride if blk == 1 else 1
            if blk == 1:   # projection shortcut, strided like the first 1x1 (v1)
                shortcut = net.bn(net.conv(x, f"{name}_0_conv", 4 * filters, 1, s), f"{name}_0_bn", RESNET_EPS,
                                  feeds_add=True)
            else:
                shortcut = x
            y = net.relu(net.bn(net.conv(x, f"{name}_1_conv", filters, 1, s), f"{name}_1_bn", RESNET_EPS))
            y = net.relu(net.bn(net.conv(y, f"{name}_2_conv", filters, 3, 1, "same"), f"{name}_2_bn", RESNET_EPS))
            y = net.bn(net.conv(y, f"{name}_3_conv", 4 * filters, 1), f"{name}_3_bn", RESNET_EPS, feeds_add=True)
            x = net.relu(shortcut + y)
    return x


# ---------------------------------------------------------------- InceptionV3 (Keras)
INCEPTION_EPS = 1e-3


def inceptionv3_trunk(net: KerasNet, x):
    net.reset_names()

    def cbr(t, filters, kh, kw, strides=(1, 1), padding="same"):
        conv = net.auto("conv2d")
        bn = net.auto("batch_normalization")
        net.auto("activation")
        t = net.conv(t, conv, filters, (kh, kw), strides, padding, use_bias=False)
        return net.relu(net.bn(t, bn, INCEPTION_EPS, scale=False))

    def avg_pool(t):
        net.auto("average_pooling2d")
        return net.avg_pool_same_exclude_pad(t, 3, 1)

    def max_pool(t):
        net.auto("max_pooling2d")
        return net.max_pool_valid(t, 3, 2)

    cat = lambda ts: torch.cat(ts, dim=1)

    x = cbr(x, 32, 3, 3, (2, 2), "valid")
    x = cbr(x, 32, 3, 3, padding="valid")
    x = cbr(x, 64, 3, 3)
    x = max_pool(x)
    x = cbr(x, 80, 1, 1, padding="valid")
    x = cbr(x, 192, 3, 3, padding="valid")
    x = max_pool(x)
    # mixed0..2: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1
    for pool_filters in (32, 64, 64):
        b1 = cbr(x, 64, 1, 1)
        b5 = cbr(cbr(x, 48, 1, 1), 64, 5, 5)
        b3 = cbr(cbr(cbr(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        bp = cbr(avg_pool(x), pool_filters, 1, 1)
        x = cat([b1, b5, b3, bp])
    # mixed3: strided 3x3 | 1x1-3x3-strided 3x3 | max pool
    b3 = cbr(x, 384, 3, 3, (2, 2), "valid")
    bd = cbr(cbr(cbr(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, (2, 2), "valid")
    bp = max_pool(x)
    x = cat([b3, bd, bp])
    # mixed4..7: factorised 7x7
    for c in (128, 160, 160, 192):
        b1 = cbr(x, 192, 1, 1)
        b7 = cbr(cbr(cbr(x, c, 1, 1), c, 1, 7), 192, 7, 1)
        bd = cbr(cbr(cbr(cbr(cbr(x, c, 1, 1), c, 7, 1), c, 1, 7), c, 7, 1), 192, 1, 7)
        bp = cbr(avg_pool(x), 192, 1, 1)
        x = cat([b1, b7, bd, bp])
    # mixed8
    b3 = cbr(cbr(x, 192, 1, 1), 320, 3, 3, (2, 2), "valid")
    b7 = cbr(cbr(cbr(cbr(x, 192, 1, 1), 192, 1, 7), 192, 7, 1), 192, 3, 3, (2, 2), "valid")
    bp = max_pool(x)
    x = cat([b3, b7, bp])
    # mixed9, mixed10: expanded filter banks
    for _ in range(2):
        b1 = cbr(x, 320, 1, 1)
        b3 = cbr(x, 384, 1, 1)
        b3 = cat([cbr(b3, 384, 1, 3), cbr(b3, 384, 3, 1)])
        bd = cbr(cbr(x, 448, 1, 1), 384, 3, 3)
        bd = cat([cbr(bd, 384, 1, 3), cbr(bd, 384, 3, 1)])
        net.auto("concatenate")
        bp = cbr(avg_pool(x), 192, 1, 1)
        x = cat([b1, b3, bd, bp])
    return x


TRUNKS = {"resnet50": resnet50_trunk, "inceptionv3": inceptionv3_trunk}

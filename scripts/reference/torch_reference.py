#!/usr/bin/env python3
"""Reference dumps for ResNet50 and InceptionV3: the Keras variants (keras_variants.py, an
independent PyTorch implementation) and torchvision's models as they are, with the tensors of
refinit.py / weightgen.py. Computed in float64, stored as float32 (safetensors) with float64
sketches of every gradient in the metadata. Format: README.md.

    /tmp/venv-torch/bin/python scripts/reference/torch_reference.py                      # the four dumps
    /tmp/venv-torch/bin/python scripts/reference/torch_reference.py --full /tmp/ref-full # + full float64 arrays for tf_check.py
"""
import argparse, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.numpy import save_file

import weightgen as wg
import keras_variants as kv
from refinit import Init, GAIN

FORMAT = "vggtl-reference-v1"
CLASSES = 3
K_PROJ, SAMPLES = 8, 16
FULL_MAX = 4096           # gradients with at most this many elements are also stored in full
ZERO_REL = 1e-10          # a float64 gradient norm below this times the step's median norm is 0 in exact arithmetic
VARIANTS = {
    # name: (family, model, image size, batch)
    "keras_resnet50": ("keras", "resnet50", 80, 2),
    "torchvision_resnet50": ("torchvision", "resnet50", 80, 2),
    "keras_inceptionv3": ("keras", "inceptionv3", 139, 2),
    "torchvision_inceptionv3": ("torchvision", "inceptionv3", 139, 2),
}


def make_input(size, batch, global_seed=0):
    x = wg.tensor("input", [batch, size, size, 3], 1.0, 0.0, False, global_seed)          # NHWC
    labels = (wg.stream(wg.seed_of("labels", global_seed), batch) % np.uint64(CLASSES)).astype(np.int64)
    return x, labels


def to_keras_layout(g):
    """A torch gradient in Keras layout: OIHW -> HWIO, (out, in) -> (in, out)."""
    g = g.detach().cpu().numpy().astype(np.float64)
    if g.ndim == 4:
        return np.ascontiguousarray(g.transpose(2, 3, 1, 0))
    if g.ndim == 2:
        return np.ascontiguousarray(g.T)
    return g


def nhwc(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float64).transpose(0, 2, 3, 1))


def f64(t):
    return t.detach().cpu().numpy().astype(np.float64)


def margin_summary(safety):
    """The smallest margin/error ratio of each kind (see keras_variants.safety)."""
    out = {}
    for kind in ("relu", "max_pool"):
        vals = [(r, m, e) for k, r, m, e in safety if k == kind]
        if vals:
            i = int(np.argmin([v[0] for v in vals]))
            out[kind] = {"min_ratio": vals[i][0], "margin": vals[i][1], "float32_error": vals[i][2],
                         "at_call": i, "calls": len(vals)}
    return out


# ------------------------------------------------------------------ Keras variants
def keras_order(model):
    """Keras' weight order: model.layers order, each layer's trainable then non-trainable
    weights (the HDF5 order), from the committed keras/<model>_notop.layers.json."""
    d = json.load(open(os.path.join(HERE, "keras", f"{model}_notop.layers.json")))
    return [(w["name"].split(":")[0], w["shape"], l["name"], l["index"])
            for l in d["layers"] for w in l["trainable_weights"] + l["non_trainable_weights"]]


def calibrate_keras(model, size, batch, init):
    """One float64 pass over the batch twice (training-mode path, inference-mode path in
    lockstep): moving statistics, and betas of BNs without gamma (KerasNet.bn_calibrate)."""
    net = kv.KerasNet(init, torch.float64)
    net.bn_mode = "calibrate"
    x = torch.tensor(make_input(size, batch, init.global_seed)[0], dtype=torch.float64).permute(0, 3, 1, 2)
    with torch.no_grad():
        kv.TRUNKS[model](net, torch.cat([x, x]))


def run_keras(model, size, batch, dtype, init):
    trunk = kv.TRUNKS[model]
    x_np, labels = make_input(size, batch, init.global_seed)
    net = kv.KerasNet(init, dtype)
    x = torch.tensor(x_np, dtype=dtype).permute(0, 3, 1, 2)
    y = torch.tensor(labels)
    res = {"input": x_np, "labels": labels, "records": {}}

    net.bn_mode, net.margins = "infer", []
    with torch.no_grad():
        f = trunk(net, x)
        logits = net.head(f, CLASSES)
        res["inference"] = {"features": nhwc(f), "logits": f64(logits), "loss": F.cross_entropy(logits, y).item()}
    res["records"]["inference"] = net.margins
    order = keras_order(model)
    mine = {s["name"]: s for s in net.specs}
    trunk_names = [s["name"] for s in net.specs if not s["name"].startswith("head_dense/")]
    keras_names = [o[0] for o in order]
    assert sorted(trunk_names) == sorted(keras_names), (
        f"{model}: my tensors differ from Keras': only mine {sorted(set(trunk_names) - set(keras_names))[:5]}, "
        f"only Keras {sorted(set(keras_names) - set(trunk_names))[:5]}")
    for name, shape, _, _ in order:
        assert mine[name]["shape"] == shape, f"{name}: {mine[name]['shape']} vs Keras {shape}"
    specs = [dict(mine[n], layer=l, layer_index=i) for n, _, l, i in order] + \
            [dict(mine[n], layer="head_dense") for n in ("head_dense/kernel", "head_dense/bias")]

    def step(mode, trainable_kinds):
        net.bn_mode, net.stats, net.margins = mode, {}, []
        for name, t in net.P.items():
            t.requires_grad_(mine[name]["kind"] in trainable_kinds)
            t.grad = None
        f = trunk(net, x)
        logits = net.head(f, CLASSES)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        out = {"features": nhwc(f), "logits": f64(logits), "loss": loss.item(),
               "grads": {s["name"]: f64(net.P[s["name"]].grad) for s in specs if s["kind"] in trainable_kinds}}
        if mode == "train":
            out["bn_stats"] = {k: (f64(m), f64(v)) for k, (m, v) in net.stats.items()}
            res["records"]["train"] = net.margins
        return out

    res["train"] = step("train", ("kernel", "bias", "gamma", "beta"))
    res["frozen"] = step("infer", ("kernel", "bias"))
    for t in net.P.values():
        t.requires_grad_(False)
    res["specs"] = specs
    return res


# ------------------------------------------------------------------ torchvision
def tv_model(model):
    if model == "resnet50":
        m = torchvision.models.resnet50(weights=None)
        seq = [m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4]
    else:
        m = torchvision.models.inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=False)
        seq = [m.Conv2d_1a_3x3, m.Conv2d_2a_3x3, m.Conv2d_2b_3x3, m.maxpool1, m.Conv2d_3b_1x1, m.Conv2d_4a_3x3,
               m.maxpool2, m.Mixed_5b, m.Mixed_5c, m.Mixed_5d, m.Mixed_6a, m.Mixed_6b, m.Mixed_6c, m.Mixed_6d,
               m.Mixed_6e, m.Mixed_7a, m.Mixed_7b, m.Mixed_7c]
    return m, torch.nn.Sequential(*seq)


TV_SUFFIX = {"conv.weight": "kernel", "bn.weight": "gamma", "bn.bias": "beta", "bn.running_mean": "moving_mean",
             "bn.running_var": "moving_variance"}


def tv_keras_names(model, names):
    """torchvision state_dict name -> the Keras-style name vggtl gives the same tensor (its
    torchvision trunks use Keras' layer list and names). ResNet50: conv1/bn1 -> conv1_conv/
    conv1_bn, layerS.B.convK/bnK -> conv{S+1}_block{B+1}_K_conv/_bn, downsample.0/.1 -> _0_conv/
    _0_bn. InceptionV3: the k-th BasicConv2d in module order is Keras' k-th conv2d_bn, i.e.
    conv2d[_k] / batch_normalization[_k] (torchvision defines the branches in Keras' order)."""
    out = {}
    if model == "resnet50":
        import re
        for n in names:
            mod, _, leaf = n.rpartition(".")
            kind = {"weight": "kernel", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}[leaf]
            if mod == "conv1":
                layer = "conv1_conv"
            elif mod == "bn1":
                layer = "conv1_bn"
            else:
                m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv(\d)|bn(\d)|downsample\.(\d))", mod)
                assert m, n
                block = f"conv{int(m.group(1)) + 1}_block{int(m.group(2)) + 1}"
                if m.group(4):
                    layer = f"{block}_{m.group(4)}_conv"
                elif m.group(5):
                    layer = f"{block}_{m.group(5)}_bn"
                else:
                    layer = f"{block}_0_{'conv' if m.group(6) == '0' else 'bn'}"
            if layer.endswith("_bn") and leaf == "weight":
                kind = "gamma"
            out[n] = f"{layer}/{kind}"
        return out
    prefixes = []
    for n in names:
        p = n[: n.index(".conv.") if ".conv." in n else n.index(".bn.")]
        if p not in prefixes:
            prefixes.append(p)
    for n in names:
        p = n[: n.index(".conv.") if ".conv." in n else n.index(".bn.")]
        k = prefixes.index(p)
        suffix = TV_SUFFIX[n[len(p) + 1:]]
        base = "conv2d" if suffix == "kernel" else "batch_normalization"
        out[n] = f"{base if k == 0 else f'{base}_{k}'}/{suffix}"
    return out


def tv_specs(m, init):
    """Every tensor of the trunk's state_dict (fc excluded), in state_dict order."""
    kinds = {}
    for mname, mod in m.named_modules():
        if mname.startswith("fc") or mname.startswith("AuxLogits"):
            continue
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            kinds[f"{mname}.weight"] = ("kernel", {})
            if mod.bias is not None:
                kinds[f"{mname}.bias"] = ("bias", {})
        elif isinstance(mod, torch.nn.BatchNorm2d):
            feeds_add = mname.endswith(".bn3") or mname.endswith(".downsample.1")
            kinds.update({f"{mname}.weight": ("gamma", {}), f"{mname}.bias": ("beta", {"feeds_add": feeds_add}),
                          f"{mname}.running_mean": ("moving_mean", {}), f"{mname}.running_var": ("moving_variance", {})})
    specs = [init.spec(name, list(t.shape), kinds[name][0], "torch", **kinds[name][1])
             for name, t in m.state_dict().items() if name in kinds]
    add_keras_names(specs, "resnet50" if hasattr(m, "layer1") else "inceptionv3")
    return specs


def add_keras_names(specs, model):
    """Adds keras_name (vggtl's name) to torchvision specs, checked against Keras' own shapes."""
    names = tv_keras_names(model, [s["name"] for s in specs])
    keras = {n: shape for n, shape, _, _ in keras_order(model)}
    for s in specs:
        k = names[s["name"]]
        shape = s["shape"] if len(s["shape"]) != 4 else [s["shape"][2], s["shape"][3], s["shape"][1], s["shape"][0]]
        if k in keras:    # gamma of torchvision's Inception has no Keras twin (scale=False there)
            assert keras[k] == shape, f"{s['name']} -> {k}: {shape} vs Keras {keras[k]}"
        s["keras_name"] = k


def tv_hooks(m, margins, stats, pool_inputs=None):
    """Record the input of every ReLU and max pool (pre-activations from nn.ReLU inputs, or from
    the BN outputs of Inception's BasicConv2d, whose ReLU is functional), batch statistics of every BN."""
    hooks = []
    rec = lambda kind, t, ks=None: margins.append((kind, t.detach().double().clone(), ks))
    for n, mod in m.named_modules():
        if isinstance(mod, torch.nn.ReLU) and margins is not None:
            hooks.append(mod.register_forward_pre_hook(lambda mod, inp: rec("relu", inp[0])))
        if isinstance(mod, torch.nn.MaxPool2d) and margins is not None:
            hooks.append(mod.register_forward_pre_hook(
                lambda mod, inp: rec("max_pool", inp[0], (mod.kernel_size, mod.stride))))
        if type(mod).__name__ == "BasicConv2d" and margins is not None:
            hooks.append(mod.bn.register_forward_hook(lambda mod, inp, out: rec("relu", out)))
        if type(mod).__name__ in ("InceptionB", "InceptionD") and margins is not None:   # functional 3x3/2 max pool of the block input
            hooks.append(mod.register_forward_pre_hook(lambda mod, inp: rec("max_pool", inp[0], (3, 2))))
        if pool_inputs is not None and (isinstance(mod, torch.nn.MaxPool2d) or type(mod).__name__ in ("InceptionB", "InceptionD")):
            hooks.append(mod.register_forward_pre_hook(lambda mod, inp: pool_inputs.append(inp[0])))
        if isinstance(mod, torch.nn.BatchNorm2d) and stats is not None:
            def bn_hook(mod, inp, n=n):
                t = inp[0].detach()
                mean = t.mean(dim=(0, 2, 3))
                stats[n] = (f64(mean), f64(((t - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))))
            hooks.append(mod.register_forward_pre_hook(bn_hook))
    return hooks


def tv_setup(model, dtype, init):
    torch.manual_seed(0)
    m, trunk = tv_model(model)
    m = m.to(dtype)
    specs = tv_specs(m, init)
    sd = m.state_dict()
    with torch.no_grad():
        for s in specs:
            sd[s["name"]].copy_(torch.tensor(init.values(s), dtype=dtype))
    return m, trunk, specs


def calibrate_torchvision(model, size, batch, init):
    m, trunk, _ = tv_setup(model, torch.float64, init)
    stats = {}
    hooks = tv_hooks(m, None, stats)
    m.train()
    x = torch.tensor(make_input(size, batch, init.global_seed)[0], dtype=torch.float64).permute(0, 3, 1, 2)
    with torch.no_grad():
        trunk(x)
    for h in hooks:
        h.remove()
    init.calibrate({f"{n}.running_mean": (f"{n}.running_var", mean, var) for n, (mean, var) in stats.items()})


def run_torchvision(model, size, batch, dtype, init):
    m, trunk, specs = tv_setup(model, dtype, init)
    params = dict(m.named_parameters())
    head = [init.spec("head_dense/kernel", [2048, CLASSES], "kernel", "keras"),
            init.spec("head_dense/bias", [CLASSES], "bias", "keras")]
    head_k, head_b = (torch.tensor(init.values(s), dtype=dtype) for s in head)
    x_np, labels = make_input(size, batch, init.global_seed)
    x = torch.tensor(x_np, dtype=dtype).permute(0, 3, 1, 2)
    y = torch.tensor(labels)
    res = {"input": x_np, "labels": labels, "records": {}}

    def forward(x):
        f = trunk(x)
        return f, f.mean(dim=(2, 3)) @ head_k + head_b

    margins = []
    hooks = tv_hooks(m, margins, None)
    m.eval()
    with torch.no_grad():
        f, logits = forward(x)
        res["inference"] = {"features": nhwc(f), "logits": f64(logits), "loss": F.cross_entropy(logits, y).item()}
    for h in hooks:
        h.remove()
    res["records"]["inference"] = margins
    saved = {k: v.clone() for k, v in m.state_dict().items()}

    def step(train, trainable_kinds):
        m.load_state_dict(saved)
        m.train(train)
        for s in specs:
            if s["name"] in params:
                params[s["name"]].requires_grad_(s["kind"] in trainable_kinds)
                params[s["name"]].grad = None
        head_k.requires_grad_(True), head_b.requires_grad_(True)
        head_k.grad = head_b.grad = None
        stats, margins = {}, []
        hooks = tv_hooks(m, margins, stats) if train else []
        f, logits = forward(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        for h in hooks:
            h.remove()
        grads = {s["name"]: to_keras_layout(params[s["name"]].grad) for s in specs if s["kind"] in trainable_kinds}
        grads["head_dense/kernel"], grads["head_dense/bias"] = f64(head_k.grad), f64(head_b.grad)
        out = {"features": nhwc(f), "logits": f64(logits), "loss": loss.item(), "grads": grads}
        if train:
            out["bn_stats"] = stats
            res["records"]["train"] = margins
        return out

    res["train"] = step(True, ("kernel", "bias", "gamma", "beta"))
    res["frozen"] = step(False, ("kernel", "bias"))
    m.load_state_dict(saved)
    res["specs"] = specs + head
    return res


def forward_records(variant, init, dtype):
    """The ReLU / max-pool inputs of the inference and training-mode forwards."""
    family, model, size, batch = VARIANTS[variant]
    x = torch.tensor(make_input(size, batch, init.global_seed)[0], dtype=dtype).permute(0, 3, 1, 2)
    out = {}
    if family == "keras":
        for mode in ("infer", "train"):
            net = kv.KerasNet(init, dtype)
            net.bn_mode, net.margins = mode, []
            with torch.no_grad():
                kv.TRUNKS[model](net, x)
            out["inference" if mode == "infer" else "train"] = net.margins
    else:
        m, trunk, _ = tv_setup(model, dtype, init)
        for train in (False, True):
            margins = []
            hooks = tv_hooks(m, margins, None)
            m.train(train)
            with torch.no_grad():
                trunk(x)
            for h in hooks:
                h.remove()
            out["train" if train else "inference"] = margins
    return out


def seed_safety(variant, global_seed, upstream=None):
    """How safe a seed's reference is for a float32 implementation: (number of gradients a
    near-tie max pool makes routing-sensitive, smallest ReLU margin/error ratio), the summary,
    and the max-pool upstream sets (computed once per variant: they do not depend on the seed)."""
    family, model, size, batch = VARIANTS[variant]
    init = Init(family, model, global_seed)
    (calibrate_keras if family == "keras" else calibrate_torchvision)(model, size, batch, init)
    r64, r32 = forward_records(variant, init, torch.float64), forward_records(variant, init, torch.float32)
    summary = {step: margin_summary(kv.safety(r64[step], r32[step])) for step in r64}
    upstream = upstream if upstream is not None else pool_upstream(variant, init)
    sensitive = routing_sensitivity({"records": r64}, {"records": r32}, upstream)
    relu = min(v["relu"]["min_ratio"] for v in summary.values())
    return (sum(len(v) for v in sensitive.values()), relu), summary, upstream


def pool_upstream(variant, init):
    """For each max pool (in forward order), the trainable tensors its input depends on: the
    tensors whose gradients a different max-pool choice would change."""
    family, model, size, batch = VARIANTS[variant]
    x = torch.tensor(make_input(size, batch, init.global_seed)[0], dtype=torch.float64).permute(0, 3, 1, 2)
    pools = []
    if family == "keras":
        net = kv.KerasNet(init, torch.float64)
        net.pool_inputs = pools
        kv.TRUNKS[model](net, x)      # creates the parameters
        kinds = {sp["name"]: sp["kind"] for sp in net.specs}
        params = {n: t for n, t in net.P.items() if kinds[n] in ("kernel", "bias", "gamma", "beta")}
        for t in params.values():
            t.requires_grad_(True)
        pools.clear()
        kv.TRUNKS[model](net, x)
    else:
        m, trunk, specs = tv_setup(model, torch.float64, init)
        named = dict(m.named_parameters())
        params = {s["name"]: named[s["name"]] for s in specs if s["name"] in named}
        hooks = tv_hooks(m, None, None, pools)
        m.eval()
        trunk(x)
        for h in hooks:
            h.remove()
    names = list(params)
    out = []
    for p in pools:
        r = torch.sin(torch.arange(p.numel(), dtype=torch.float64)).reshape(p.shape)     # any dense weighting
        grads = torch.autograd.grad((p * r).sum(), [params[n] for n in names], allow_unused=True, retain_graph=True)
        out.append({n for n, g in zip(names, grads) if g is not None and bool((g != 0).any())})
    return out


# A max pool whose closest pair (its gap) is less than this many times twice the largest float32
# error of its input may route a gradient differently in another float32 implementation.
ROUTING_SAFE = 4


def routing_sensitivity(r64, r32, upstream):
    """step -> tensor -> smallest margin/error ratio of the max pools upstream of it, for
    tensors under ROUTING_SAFE (their gradients may legitimately differ in a float32 run)."""
    out = {}
    for step, fwd in (("train", "train"), ("frozen", "inference")):
        ratios = [r for k, r, _, _ in kv.safety(r64["records"][fwd], r32["records"][fwd]) if k == "max_pool"]
        assert len(ratios) == len(upstream), (len(ratios), len(upstream))
        out[step] = {}
        for ratio, names in zip(ratios, upstream):
            if ratio < ROUTING_SAFE:
                trainable = set(r64[step]["grads"]) if step in r64 else names   # seed_safety has no gradients
                for n in names & trainable:
                    out[step][n] = min(ratio, out[step].get(n, float("inf")))
    return out


def reference(variant, global_seed=0):
    """The calibrated Init, the float64 run and a float32 run of one variant."""
    family, model, size, batch = VARIANTS[variant]
    init = Init(family, model, global_seed)
    (calibrate_keras if family == "keras" else calibrate_torchvision)(model, size, batch, init)
    runner = run_keras if family == "keras" else run_torchvision
    r64, r32 = runner(model, size, batch, torch.float64, init), runner(model, size, batch, torch.float32, init)
    r64["margins"] = {step: margin_summary(kv.safety(r64["records"][step], r32["records"][step])) for step in r64["records"]}
    r64["routing_sensitive"] = routing_sensitivity(r64, r32, pool_upstream(variant, init))
    r64["global_seed"] = global_seed
    return init, r64, r32


# ------------------------------------------------------------------ comparison and writing
def rel(a, b):
    """max |a - b| / max |b| (the tests' measure)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def expected_zeros(r64, step):
    """Gradients that are 0 in exact arithmetic (float64 leaves ~1e-16 of the others' size):
    conv biases before a training-mode BN, and betas whose channels stay on a ReLU's linear
    side into 1x1 convolutions and a training-mode BN (the batch mean removes a constant)."""
    norms = {n: float(np.linalg.norm(g)) for n, g in r64[step]["grads"].items()}
    med = float(np.median(list(norms.values())))
    return {n for n, v in norms.items() if v <= ZERO_REL * med}, med


def compare(r32, r64):
    """A float32 run against the float64 reference, per quantity (worst tensor). Gradients that
    a near-tie max pool upstream may route differently are reported apart (relative L2)."""
    out = {}
    for step in ("inference", "train"):
        for q in ("features", "logits"):
            out[f"{step}/{q}"] = rel(r32[step][q], r64[step][q])
        out[f"{step}/loss"] = abs(r32[step]["loss"] - r64[step]["loss"]) / abs(r64[step]["loss"])
    for step in ("train", "frozen"):
        zeros, med = expected_zeros(r64, step)
        sensitive = r64["routing_sensitive"][step]
        errs = {n: rel(r32[step]["grads"][n], g) for n, g in r64[step]["grads"].items()
                if n not in zeros and n not in sensitive}
        if sensitive:
            sl2 = {n: float(np.linalg.norm(r32[step]["grads"][n] - r64[step]["grads"][n]) / np.linalg.norm(r64[step]["grads"][n]))
                   for n in sensitive if n in r64[step]["grads"] and n not in zeros}
            out[f"{step}/routing_sensitive_count"] = len(sl2)
            out[f"{step}/routing_sensitive_max_relative_l2"] = max(sl2.values()) if sl2 else 0.0
        worst = max(errs, key=errs.get)
        out[f"{step}/grads_max"], out[f"{step}/grads_worst_tensor"] = errs[worst], worst
        out[f"{step}/grads_median"] = float(np.median(list(errs.values())))
        out[f"{step}/grads_over_1e-4"] = int(sum(e > 1e-4 for e in errs.values()))
        l2 = {n: float(np.linalg.norm(r32[step]["grads"][n] - g) / np.linalg.norm(g))
              for n, g in r64[step]["grads"].items() if n not in zeros and n not in sensitive}
        out[f"{step}/grads_max_relative_l2"] = max(l2.values())
        out[f"{step}/grads_compared"] = len(errs)
        if zeros:
            out[f"{step}/expected_zero_count"] = len(zeros)
            out[f"{step}/expected_zero_max_norm_over_median_norm"] = max(
                float(np.linalg.norm(r32[step]["grads"][n])) / med for n in zeros)
    return out


def write_dump(variant, init, r, path, float32_vs_float64):
    family, model, size, batch = VARIANTS[variant]
    f32 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    tensors = {"input": f32(r["input"]), "labels": f32(r["labels"])}
    for s in r["specs"]:
        if s.get("stored"):
            tensors[f"weights/{s['name']}"] = f32(init.stored[s["name"]])
    for step in ("inference", "train"):
        tensors[f"{step}/features"] = f32(r[step]["features"])
        tensors[f"{step}/logits"] = f32(r[step]["logits"])
        tensors[f"{step}/loss"] = f32([r[step]["loss"]])
    tensors["frozen/loss"] = f32([r["frozen"]["loss"]])
    sketches = {}
    for step in ("train", "frozen"):
        zeros, med = expected_zeros(r, step)
        sketches[step] = {}
        for name, g in r[step]["grads"].items():
            s = wg.sketch(name, g, K_PROJ, SAMPLES)
            e = {"n": int(g.size), "norm": s["norm"], "maxabs": s["maxabs"], "proj": s["proj"].tolist(),
                 "sample_index": s["sample_index"].tolist(), "sample_value": s["sample_value"].tolist()}
            if name in zeros:
                e["expected_zero"], e["zero_scale"] = True, med
            elif name in r["routing_sensitive"][step]:
                e["routing_sensitive"], e["pool_ratio"] = True, r["routing_sensitive"][step][name]
            sketches[step][name] = e
            if g.size <= FULL_MAX:
                tensors[f"{step}/grad/{name}"] = f32(g)
    for name, (mean, var) in r["train"]["bn_stats"].items():
        tensors[f"train/bn_mean/{name}"] = f32(mean)
        tensors[f"train/bn_var/{name}"] = f32(var)
    config = {
        "variant": variant, "family": family, "model": model,
        "input_shape_nhwc": [batch, size, size, 3], "classes": CLASSES, "global_seed": str(init.global_seed),
        "weights": "every entry of 'tensors': generated by weightgen's rule from name/shape/scale/offset/signed, "
                   "or stored ('stored': true) as weights/<name> (calibrated BatchNormalization moving statistics, and the betas of BNs without gamma)",
        "init_policy": "refinit.py", "kernel_gain": GAIN[model],
        "tensor_order": "Keras: model.layers order, each layer's trainable then non-trainable weights (the HDF5 order), "
                        "then the head" if family == "keras" else "torchvision state_dict order (fc excluded), then the head",
        "bn_epsilon": {"keras_resnet50": 1.001e-5, "keras_inceptionv3": 1e-3,
                       "torchvision_resnet50": 1e-5, "torchvision_inceptionv3": 1e-3}[variant],
        "head": "GlobalAveragePooling2D over the trunk's output, then Dense(classes) 'head_dense' with linear logits",
        "loss": "softmax cross-entropy with integer labels, mean over the batch",
        "steps": {
            "inference": "BatchNormalization with moving statistics; no gradients",
            "train": "one from-scratch training step: BatchNormalization normalises with the batch mean and "
                     "biased batch variance (training mode); gradients of every kernel, bias, gamma, beta and the head",
            "frozen": "one fine-tuning step: every BatchNormalization frozen in inference mode (moving statistics, "
                      "gamma/beta not trained); gradients of every kernel and bias and the head. Its forward is "
                      "the inference forward",
        },
        "avg_pool": ("Keras: 'same' 3x3 stride 1, padding excluded from the count" if family == "keras"
                     else "torchvision: 3x3 stride 1 padding 1, count_include_pad=True") if model == "inceptionv3" else "none",
        "layouts": "activations NHWC; gradients in Keras layout (HWIO conv, (in, out) dense) whatever the weight layout",
        "computed_in": "float64 (PyTorch, CPU), stored as float32; sketches in float64",
        "sketch": {"k": K_PROJ, "samples": SAMPLES, "full_when_elements_at_most": FULL_MAX},
        "margins": r["margins"],
        "routing_sensitive": "a gradient marked routing_sensitive depends on a max pool whose closest pair of "
                             f"window values is less than {ROUTING_SAFE} float32 errors apart (pool_ratio): a "
                             "correct float32 implementation may route that window's gradient to the other "
                             "element, which changes such gradients by up to ~1e-2; compare them loosely (relative L2)",
        "float32_vs_float64": float32_vs_float64,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__},
    }
    metadata = {"format": FORMAT, "config": json.dumps(config), "tensors": json.dumps(r["specs"]),
                "sketches": json.dumps(sketches),
                "losses": json.dumps({s: r[s]["loss"] for s in ("inference", "train", "frozen")})}
    save_file(tensors, path, metadata=metadata)


def write_full(variant, init, r64, r32, directory):
    os.makedirs(directory, exist_ok=True)
    a = {"input": r64["input"], "labels": r64["labels"]}
    for s in r64["specs"]:
        a[f"weights/{s['name']}"] = init.values(s)
    for step in ("inference", "train"):
        for q in ("features", "logits"):
            a[f"{step}/{q}"] = r64[step][q]
        a[f"{step}/loss"] = np.array(r64[step]["loss"])
    a["frozen/loss"] = np.array(r64["frozen"]["loss"])
    for step in ("train", "frozen"):
        for n, g in r64[step]["grads"].items():
            a[f"{step}/grad/{n}"] = g
            a[f"{step}/grad32/{n}"] = r32[step]["grads"][n]
        a[f"{step}/expected_zero"] = np.array(json.dumps(sorted(expected_zeros(r64, step)[0])))
    for n, (mean, var) in r64["train"]["bn_stats"].items():
        a[f"train/bn_mean/{n}"], a[f"train/bn_var/{n}"] = mean, var
    np.savez(os.path.join(directory, f"{variant}.npz"), **a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "dumps"))
    ap.add_argument("--full", help="also write full float64 arrays (npz) here, for tf_check.py")
    ap.add_argument("--only", nargs="*", default=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=None,
                    help="global seed of the generator (default: the best of --search seeds)")
    ap.add_argument("--search", type=int, default=4,
                    help="seeds tried, 0..N-1: the first whose ReLU margins are >= ROUTING_SAFE float32 errors and "
                         "that makes the fewest gradients routing-sensitive (stops at 0)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    report_path = os.path.join(HERE, "reports", "torch_float32_vs_float64.json")
    report = json.load(open(report_path)) if os.path.exists(report_path) else {}
    for variant in args.only:
        seed = args.seed
        if seed is None:
            best, upstream = None, None
            for s_ in range(args.search):
                (count, relu), summary, upstream = seed_safety(variant, s_, upstream)
                print(f"{variant}: seed {s_}: {count} routing-sensitive gradients, smallest ReLU margin/error {relu:.3g}; "
                      f"{json.dumps(summary)}", flush=True)
                key = (relu < ROUTING_SAFE, count)
                if best is None or key < best[0]:
                    best = (key, s_)
                if key == (False, 0):
                    break
            seed = best[1]
        init, r64, r32 = reference(variant, seed)
        cmp = compare(r32, r64)
        report[variant] = dict(cmp, margins=r64["margins"])
        path = os.path.join(args.out, f"{variant}.safetensors")
        write_dump(variant, init, r64, path, cmp)
        if args.full:
            write_full(variant, init, r64, r32, args.full)
        print(f"{variant}: {os.path.getsize(path) / 1e6:.2f} MB, losses inference {r64['inference']['loss']:.6f} "
              f"train {r64['train']['loss']:.6f}; margins {json.dumps(r64['margins'])}; float32 vs float64: " +
              ", ".join(f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}" for k, v in cmp.items()), flush=True)
    os.makedirs(os.path.dirname(report_path), exist_ok=True)
    with open(report_path, "w") as fh:
        json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()

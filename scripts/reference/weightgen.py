"""Deterministic pseudo-random tensors that Python (numpy) and Swift
(Tests/VGGTLTests/Reference/ReferenceWeights.swift) generate bit-identically, and the gradient
sketches the dumps store. The spec (also in README.md):

  seed(name)    = FNV-1a 64 of the UTF-8 bytes of `name` (offset 0xcbf29ce484222325, prime
                  0x100000001b3), XOR the global seed (default 0).
  stream(seed)  = SplitMix64: z_i = mix(seed + (i + 1) * 0x9E3779B97F4A7C15) for i = 0, 1, ...
                  (mix: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
                  z *= 0x94D049BB133111EB; z ^= z >> 31; all mod 2^64), i.e. the i+1-th output
                  of vggtl's SeededGenerator(seed:).
  r_i           = float32(int(z_i >> 40) - 2^23) * 2^-23, exactly, in [-1, 1).
  value_i       = (r_i * scale) + offset: two float32 operations (no fused multiply-add), scale
                  and offset float32 numbers given per tensor in the dump's tensor list;
                  when `signed`, value_i is negated where the top two bits of the i-th output of
                  stream(seed("sign:" + name)) are both 0 (a quarter of the values).
  Values fill the tensor in row-major order of its shape in its layout ("keras": HWIO conv,
  (in, out) dense; "torch": OIHW conv, (out, in) linear).
  kernel_scale(shape, layout, gain) = float32(sqrt(gain / fan_in)) (float64 division and
  sqrt), fan_in the product of all dims but the last (keras) or the first (torch): what the
  reference scripts use as the scale of a kernel (He's gain is 6).

  sign vector k of a tensor (for sketches): with z_j = stream(seed("sketch<k>:" + name)),
  s_i = +1 when bit 63 - (i mod 64) of z_(i div 64) is 0, else -1 (64 signs per output, most
  significant bit first). Sketch streams always use global seed 0.
  sample indices of a tensor: the first S values of stream(seed("samples:" + name)), each mod n.
"""
import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def fnv1a64(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode("utf8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def seed_of(name: str, global_seed: int = 0) -> int:
    return fnv1a64(name) ^ (global_seed & 0xFFFFFFFFFFFFFFFF)


def stream(seed: int, n: int) -> np.ndarray:
    """The first n SplitMix64 outputs for `seed` (uint64), vectorised."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def unit(seed: int, n: int) -> np.ndarray:
    """r_i in [-1, 1) as float32, exactly (k - 2^23) * 2^-23 with k the top 24 bits."""
    k = (stream(seed, n) >> np.uint64(40)).astype(np.int64) - (1 << 23)
    return k.astype(np.float32) * np.float32(2.0 ** -23)


def fan_in(shape, layout: str) -> int:
    if layout == "keras":
        return int(np.prod(shape[:-1]))
    if layout == "torch":
        return int(np.prod(shape[1:]))
    raise ValueError(f"layout {layout!r}")


def kernel_scale(shape, layout: str, gain: float) -> float:
    """The float32 scale of a kernel, as a Python float holding that float32 value exactly."""
    return float(np.float32(np.sqrt(float(gain) / fan_in(shape, layout))))


def tensor(name: str, shape, scale: float, offset: float = 0.0, signed: bool = False, global_seed: int = 0) -> np.ndarray:
    """The float32 values of one tensor, row-major in `shape`."""
    n = int(np.prod(shape)) if len(shape) else 1
    v = (unit(seed_of(name, global_seed), n) * np.float32(scale)) + np.float32(offset)
    if signed:
        flip = (stream(seed_of("sign:" + name, global_seed), n) >> np.uint64(62)) == np.uint64(0)
        v = np.where(flip, -v, v)
    assert v.dtype == np.float32
    return v.reshape(shape)


def signs(name: str, k: int, n: int, global_seed: int = 0) -> np.ndarray:
    """+-1 (float64): the bits of sign stream k of `name`, 64 per output, most significant first."""
    words = stream(seed_of(f"sketch{k}:{name}", global_seed), (n + 63) // 64)
    bits = (words[:, None] >> np.arange(63, -1, -1, dtype=np.uint64)[None, :]) & np.uint64(1)
    return 1.0 - 2.0 * bits.reshape(-1)[:n].astype(np.float64)


def sample_indices(name: str, n: int, count: int, global_seed: int = 0) -> np.ndarray:
    return (stream(seed_of(f"samples:{name}", global_seed), count) % np.uint64(n)).astype(np.int64)


def sketch(name: str, values: np.ndarray, k: int = 8, samples: int = 16, global_seed: int = 0) -> dict:
    """The per-tensor summary the dumps store for large gradients: L2 norm, max |v|, K
    projections onto +-1 vectors, and `samples` values at pseudo-random flat indices.
    Computed in float64 from the values as given (row-major, Keras layout)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = v.size
    idx = sample_indices(name, n, samples, global_seed)
    return {
        "norm": float(np.sqrt(np.dot(v, v))),
        "maxabs": float(np.max(np.abs(v))),
        "proj": np.array([np.dot(signs(name, j, n, global_seed), v) for j in range(k)]),
        "sample_index": idx,
        "sample_value": v[idx],
    }

#!/usr/bin/env python3
"""Parity fixtures for the ProGAN generator and `thorax convert progan-tf` (run once; not needed at run time).

Builds a reduced-width conditional G_paper (64 px, fmap_base 256, fmap_max 32: feature maps 32/32/32/16/8,
latent 32, 14 labels, 1 channel) with random variables stored the way the original stores them (weights N(0,1),
unscaled; random biases so the bias path is exercised), evaluates it at lod 0 with TensorFlow's own ops
(`tf.nn.conv2d_transpose` for the fused upscale, `tf.nn.conv2d`, `tf.matmul`), and writes into
tests/fixtures/progan/:

  progan64_np1_p2.pkl   tuple (G, D, Gs) of tfutil.Network, numpy 1.x class paths, pickle protocol 2
  progan64_np1_p4.pkl   the same with protocol 4 (what the original's pickle.HIGHEST_PROTOCOL wrote on py3.6/3.7)
  progan64_np2_p5.pkl   the same with numpy 2 class paths (numpy._core...) and protocol 5 (written by --numpy2)
  inputs_latents.npy    float64 [4, 32] fresh N(0,1) latents
  inputs_labels.npy     float32 [4, 14]
  reference_output.npy  float32 [4, 1, 64, 64] TensorFlow's output
  refuse_*.pkl          tiny (8 px) pickles each wrong in one way, for the refusal tests
  network_meta.json     the architecture, for the tests

Usage (TensorFlow venv with numpy 1.x, then any venv with numpy 2):
  /work/pyenv-tf/bin/python tools/make_progan_fixtures.py
  /work/pyenv/bin/python tools/make_progan_fixtures.py --numpy2

TensorFlow's CPU kernels only take NHWC, so the graph is evaluated in NHWC; this changes memory layout only
(the Dense output is reshaped NCHW exactly as the original, then transposed).
"""

import argparse
import json
import os
import pickle
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "progan")

RESOLUTION = 64
KWARGS = dict(num_channels=1, resolution=RESOLUTION, label_size=14, fmap_base=256, fmap_max=32)
BATCH = 4


# --- a stand-in for tfutil.Network: pickles as the original does (NEWOBJ + BUILD of the __getstate__ dict) ---
tfutil = types.ModuleType("tfutil")
sys.modules["tfutil"] = tfutil


class Network:
    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state

    def __setstate__(self, state):
        self._state = state


Network.__module__ = "tfutil"
tfutil.Network = Network


def nf(stage, fmap_base, fmap_decay=1.0, fmap_max=512):
    if stage >= 8:  # Thorax_GAN's tweak; no effect below 512 px
        stage -= 1
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def g_paper_variables(rng, resolution, label_size, num_channels, fmap_base, fmap_max, lod=0.0, **_):
    """Variables of G_paper in creation order: (name, float32 array), weights N(0,1), biases N(0, 0.2)."""
    res_log2 = int(np.log2(resolution))
    latent = nf(0, fmap_base, fmap_max=fmap_max)
    variables = [("lod", np.float32(lod))]

    def weight(name, shape):
        variables.append((name + "/weight", rng.standard_normal(shape).astype(np.float32)))

    def bias(name, n):
        variables.append((name + "/bias", (0.2 * rng.standard_normal(n)).astype(np.float32)))

    c = nf(1, fmap_base, fmap_max=fmap_max)
    weight("4x4/Dense", [latent + label_size, c * 16])
    bias("4x4/Dense", c)
    weight("4x4/Conv", [3, 3, c, c])
    bias("4x4/Conv", c)
    weight("ToRGB_lod%d" % (res_log2 - 2), [1, 1, c, num_channels])
    bias("ToRGB_lod%d" % (res_log2 - 2), num_channels)
    for res in range(3, res_log2 + 1):
        s = 2 ** res
        cin, cout = nf(res - 2, fmap_base, fmap_max=fmap_max), nf(res - 1, fmap_base, fmap_max=fmap_max)
        weight("%dx%d/Conv0_up" % (s, s), [3, 3, cout, cin])
        bias("%dx%d/Conv0_up" % (s, s), cout)
        weight("%dx%d/Conv1" % (s, s), [3, 3, cout, cout])
        bias("%dx%d/Conv1" % (s, s), cout)
        weight("ToRGB_lod%d" % (res_log2 - res), [1, 1, cout, num_channels])
        bias("ToRGB_lod%d" % (res_log2 - res), num_channels)
    return variables, latent


def network(name, func, kwargs, variables):
    return Network(
        {
            "version": 2,
            "name": name,
            "static_kwargs": dict(kwargs),
            "build_module_src": "# networks.py source (stand-in for the fixture)\n",
            "build_func_name": func,
            "variables": list(variables),
        }
    )


def networks_tuple(gs_vars, kwargs):
    """(G, D, Gs): G differs from Gs in its Dense weight (so reading G by mistake is caught); D is a small stub."""
    g_vars = [(n, -v if n == "4x4/Dense/weight" else v) for n, v in gs_vars]
    d_vars = [("lod", np.float32(0.0)), ("4x4/Dense1/bias", np.zeros(15, np.float32))]
    return (network("G", "G_paper", kwargs, g_vars), network("D", "D_paper", kwargs, d_vars), network("Gs", "G_paper", kwargs, gs_vars))


def tf_reference(variables, latents, labels, resolution, num_channels, fmap_base, fmap_max, **_):
    """G_paper at lod 0 with TensorFlow ops, exactly as networks.py (use_wscale, pixel norm, lrelu 0.2, fused_scale)."""
    import tensorflow as tf

    v = dict(variables)
    res_log2 = int(np.log2(resolution))

    def w(name, gain, fan_in):
        return tf.constant(v[name + "/weight"]) * tf.constant(np.float32(gain / np.sqrt(fan_in)))

    def b(name):
        return tf.constant(v[name + "/bias"])

    def pn(x, axis):
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=axis, keepdims=True) + 1e-8)

    def act(x):
        return tf.maximum(x * tf.constant(0.2, x.dtype), x)

    def conv(x, name, gain=np.sqrt(2)):
        kernel = v[name + "/weight"].shape
        return tf.nn.conv2d(x, w(name, gain, np.prod(kernel[:-1])), strides=[1, 1, 1, 1], padding="SAME")

    def up(x, name):
        shape = v[name + "/weight"].shape  # [3, 3, out, in]
        kernel = w(name, np.sqrt(2), 9 * shape[3])
        kernel = tf.pad(kernel, [[1, 1], [1, 1], [0, 0], [0, 0]], mode="CONSTANT")
        kernel = tf.add_n([kernel[1:, 1:], kernel[:-1, 1:], kernel[1:, :-1], kernel[:-1, :-1]])
        n, h, wd, _ = x.shape
        return tf.nn.conv2d_transpose(x, kernel, [n, 2 * h, 2 * wd, shape[2]], strides=[1, 2, 2, 1], padding="SAME")

    combo = tf.concat([tf.constant(latents, tf.float32), tf.constant(labels, tf.float32)], axis=1)
    x = pn(combo, 1)
    c = nf(1, fmap_base, fmap_max=fmap_max)
    x = tf.matmul(x, w("4x4/Dense", np.sqrt(2) / 4, combo.shape[1]))
    x = tf.transpose(tf.reshape(x, [-1, c, 4, 4]), [0, 2, 3, 1])  # NCHW reshape as the original, then NHWC
    x = pn(act(x + b("4x4/Dense")), 3)
    x = pn(act(conv(x, "4x4/Conv") + b("4x4/Conv")), 3)
    for res in range(3, res_log2 + 1):
        s = "%dx%d" % (2 ** res, 2 ** res)
        x = pn(act(up(x, s + "/Conv0_up") + b(s + "/Conv0_up")), 3)
        x = pn(act(conv(x, s + "/Conv1") + b(s + "/Conv1")), 3)
    x = conv(x, "ToRGB_lod0", gain=1) + b("ToRGB_lod0")
    return tf.transpose(x, [0, 3, 1, 2]).numpy()


def dump(obj, path, protocol):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    print("wrote", path, os.path.getsize(path), "bytes")


def refusal_pickles():
    """Tiny 8 px networks, each wrong in exactly one way."""
    kwargs = dict(num_channels=1, resolution=8, label_size=14, fmap_base=8, fmap_max=4)
    rng = np.random.RandomState(7)
    good, _ = g_paper_variables(rng, **kwargs)
    cases = {}
    cases["refuse_lod.pkl"] = networks_tuple([(n, np.float32(1.5) if n == "lod" else a) for n, a in good], kwargs)
    cases["refuse_missing.pkl"] = networks_tuple([(n, a) for n, a in good if n != "8x8/Conv1/weight"], kwargs)
    cases["refuse_shape.pkl"] = networks_tuple(
        [(n, np.zeros([3, 3, 4, 5], np.float32) if n == "8x8/Conv0_up/weight" else a) for n, a in good], kwargs
    )
    nan_vars = [(n, a.copy()) for n, a in good]
    dict(nan_vars)["4x4/Conv/weight"][1, 1, 0, 0] = np.nan
    cases["refuse_nan.pkl"] = networks_tuple(nan_vars, kwargs)
    other = networks_tuple(good, kwargs)
    other[2]._state["build_func_name"] = "G_mnist"
    cases["refuse_build_func.pkl"] = other
    cases["refuse_not_network.pkl"] = {"weights": np.zeros(3, np.float32)}
    cases["refuse_fused.pkl"] = networks_tuple(good, dict(kwargs, fused_scale=False))
    for name, obj in cases.items():
        dump(obj, os.path.join(OUT, name), 4)
    with open(os.path.join(OUT, "refuse_not_pickle.pkl"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not a pickle")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--numpy2", action="store_true", help="re-pickle the saved variables with numpy 2, protocol 5")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    npz = os.path.join(tempfile.gettempdir(), "progan_fixture_variables.npz")
    if args.numpy2:
        assert np.__version__.startswith("2"), "run --numpy2 with numpy 2"
        data = np.load(npz)
        names = json.loads(str(data["__names__"]))
        variables = [(n, np.float32(data[n]) if n == "lod" else data[n]) for n in names]
        dump(networks_tuple(variables, KWARGS), os.path.join(OUT, "progan64_np2_p5.pkl"), 5)
        return

    assert np.__version__.startswith("1."), "run the TensorFlow step with numpy 1.x"
    rng = np.random.RandomState(20240601)
    variables, latent = g_paper_variables(rng, **KWARGS)
    inputs_rng = np.random.RandomState(97)
    latents = inputs_rng.standard_normal([BATCH, latent])  # float64, as np.random.randn gives
    labels = (inputs_rng.uniform(size=[BATCH, KWARGS["label_size"]]) < 0.3).astype(np.float32)
    labels[1, 3] = 0.5
    labels[3, :] = 0.0
    output = tf_reference(variables, latents, labels, **KWARGS)
    np.save(os.path.join(OUT, "inputs_latents.npy"), latents)
    np.save(os.path.join(OUT, "inputs_labels.npy"), labels)
    np.save(os.path.join(OUT, "reference_output.npy"), output.astype(np.float32))
    print("reference output", output.shape, "range", output.min(), output.max())
    gs = networks_tuple(variables, KWARGS)
    dump(gs, os.path.join(OUT, "progan64_np1_p2.pkl"), 2)
    dump(gs, os.path.join(OUT, "progan64_np1_p4.pkl"), 4)
    np.savez(npz, __names__=json.dumps([n for n, _ in variables]), **{n: np.asarray(a) for n, a in variables})
    meta = dict(KWARGS, latent_size=latent, batch=BATCH, tensorflow=__import__("tensorflow").__version__,
                numpy=np.__version__)
    with open(os.path.join(OUT, "network_meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    refusal_pickles()


if __name__ == "__main__":
    main()

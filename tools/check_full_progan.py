#!/usr/bin/env python3
"""Full-size check of `thorax convert progan-tf` + `thorax generate` against TensorFlow (run by hand; not in CI).

Builds a 256 px, full-width G_paper exactly like the released Thorax_GAN snapshots (fmap_base 8192, fmap_max 512,
latent 512, 14 labels, 1 channel; about 23 M parameters per network) with random variables, pickles (G, D, Gs) as
the original did (tfutil.Network, numpy 1.x, pickle protocol 4; about 180 MB), evaluates Gs at lod 0 with
TensorFlow for a few latents, then converts the pickle and generates the same images with the thorax binary and
compares the raw outputs.

  /work/pyenv-tf/bin/python tools/check_full_progan.py --thorax target/release/thorax [--work /tmp/progan-full]

Prints one JSON document with the errors and timings. Nothing it writes belongs in the repository.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_progan_fixtures as fx  # noqa: E402  (also registers the tfutil.Network stand-in)

KWARGS = dict(num_channels=1, resolution=256, label_size=14, fmap_base=8192, fmap_max=512)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--thorax", required=True, help="path of the thorax binary")
    parser.add_argument("--work", default="/tmp/progan-full", help="scratch folder (about 300 MB)")
    parser.add_argument("-n", type=int, default=3, help="number of images")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    pkl = os.path.join(args.work, "network-snapshot-full.pkl")
    model = os.path.join(args.work, "full.safetensors")
    latents_path = os.path.join(args.work, "latents.npy")
    labels_path = os.path.join(args.work, "labels.npy")
    raw_path = os.path.join(args.work, "raw.npy")
    report = {}

    rng = np.random.RandomState(256)
    gs_vars, latent = fx.g_paper_variables(rng, **KWARGS)
    g_vars, _ = fx.g_paper_variables(rng, **KWARGS)
    networks = (
        fx.network("G", "G_paper", KWARGS, g_vars),
        fx.network("D", "D_paper", KWARGS, [("lod", np.float32(0.0))]),
        fx.network("Gs", "G_paper", KWARGS, gs_vars),
    )
    with open(pkl, "wb") as f:
        pickle.dump(networks, f, protocol=4)
    report["pickle_bytes"] = os.path.getsize(pkl)
    report["gs_parameters"] = int(sum(np.asarray(a).size for n, a in gs_vars if n != "lod"))

    latents = np.random.RandomState(1000).randn(args.n, latent)
    labels = np.zeros([args.n, 14], np.float32)
    labels[0, [0, 13]] = 1.0  # No Finding + Support Devices, the notebook's first row
    if args.n > 1:
        labels[1, 2] = 1.0
    np.save(latents_path, latents)
    np.save(labels_path, labels)

    started = time.time()
    reference = fx.tf_reference(gs_vars, latents, labels, **KWARGS)
    report["tensorflow_s"] = time.time() - started

    started = time.time()
    # --overwrite: the scratch folder holds the previous run's outputs.
    subprocess.run([args.thorax, "convert", "progan-tf", pkl, model, "--dataset", "chexpert", "--overwrite"],
                   check=True, stdout=subprocess.DEVNULL)
    report["convert_s"] = time.time() - started
    started = time.time()
    out = subprocess.run(
        [args.thorax, "generate", "--model", model, "--latent-npy", latents_path, "--labels-npy", labels_path,
         "--out-npy", raw_path, "--device", "cpu", "--batch-size", "1", "--json", "--overwrite"],
        check=True, capture_output=True, text=True)
    report["generate_s"] = time.time() - started
    report["generate_ms_per_image"] = json.loads(out.stdout)["ms_per_image"]

    ours = np.load(raw_path)
    error = float(np.abs(ours - reference).max())
    span = float(reference.max() - reference.min())
    report.update(shape=list(ours.shape), max_abs_error=error, output_range=span,
                  relative_error=error / span, passed=bool(error <= 1e-4 * span))
    print(json.dumps(report, indent=1))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Python reference timings for benches/metrics.rs (run once on the same machine, single process).

    /work/pyenv/bin/python tools/bench_metrics_python.py [--threads N]

* MS-SSIM: pytorch_msssim.ms_ssim on one 256x256 pair, float32 CPU (and a batch of 100 pairs).
* FD: pytorch-fid's calculate_frechet_distance (numpy mean/cov + scipy.linalg.sqrtm) on 10,000 x 1,024 features.
* Bootstrap: 10,000 resamples of 10,000 cases with sklearn.metrics.roc_auc_score (percentile CI), timed on 500
  resamples and scaled; Thorax_GAN's own loop (pandas sample + per-resample confusion matrices) is slower still.
"""

import argparse
import time

import numpy as np
import scipy.linalg
import sklearn.metrics
import torch
from pytorch_msssim import ms_ssim


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    x = torch.from_numpy(rng.integers(0, 256, (1, 1, 256, 256)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 256, (1, 1, 256, 256)).astype(np.float32))
    pair = best_of(lambda: ms_ssim(x, y, data_range=255), 20)
    xb = torch.from_numpy(rng.integers(0, 256, (100, 1, 256, 256)).astype(np.float32))
    yb = torch.from_numpy(rng.integers(0, 256, (100, 1, 256, 256)).astype(np.float32))
    batch = best_of(lambda: ms_ssim(xb, yb, data_range=255, size_average=False), 3) / 100
    print(f"ms_ssim 256x256: {pair * 1e3:.3f} ms/pair single, {batch * 1e3:.3f} ms/pair in batches of 100")

    n, d = 10_000, 1_024
    fa = np.maximum(rng.standard_normal((n, d)), 0).astype(np.float32)
    fb = np.maximum(rng.standard_normal((n, d)) * 1.1 + 0.1, 0).astype(np.float32)

    def fd():
        mu1, mu2 = fa.mean(0, dtype=np.float64), fb.mean(0, dtype=np.float64)
        s1 = np.cov(fa.astype(np.float64), rowvar=False)
        s2 = np.cov(fb.astype(np.float64), rowvar=False)
        covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
        covmean = covmean.real
        diff = mu1 - mu2
        return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)

    t0 = time.perf_counter()
    value = fd()
    print(f"fd 10000x1024 (np.cov + scipy sqrtm): {time.perf_counter() - t0:.2f} s (FD {value:.4f})")

    truth = (rng.random(n) < 0.2).astype(int)
    scores = 1 / (1 + np.exp(-(rng.standard_normal(n) + truth)))
    sub = 500
    t0 = time.perf_counter()
    aucs = []
    for i in range(sub):
        idx = np.random.default_rng(i).integers(0, n, n)
        aucs.append(sklearn.metrics.roc_auc_score(truth[idx], scores[idx]))
    elapsed = time.perf_counter() - t0
    print(
        f"bootstrap AUC 10000 resamples x 10000 cases (sklearn): {elapsed / sub * 10_000:.1f} s "
        f"(measured {elapsed:.2f} s for {sub}); CI {np.percentile(aucs, [2.5, 97.5])}"
    )


if __name__ == "__main__":
    main()

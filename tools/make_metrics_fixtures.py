#!/usr/bin/env python3
"""Make the golden fixtures for src/metrics (run once; not needed at run time).

    /work/pyenv/bin/python tools/make_metrics_fixtures.py [--cxr-dir /work/shared/data/cxr]

Writes tests/fixtures/metrics/*.npy and *.json. References:
  * MS-SSIM (standard): pytorch_msssim.ms_ssim (VainF, the installed version), float64 and float32.
  * MS-SSIM (thorax-gan compat): a numpy re-implementation of Thorax_GAN SSIM/ms_ssim.py (the pre-2021
    jorge-pessoa/pytorch-msssim code) written from its description in research/seed.md section 4.1:
    per-scale auto range (max > 128 -> 255 else 1; min < -0.5 -> -1 else 0), dense 11x11 Gaussian window
    (sigma 1.5, shrunk to min(11, H, W)), valid convolution, avg_pool2d(2) between scales (odd edge dropped),
    output = prod(mcs[:-1] ** w[:-1] * ssim[-1] ** w[-1]).
  * Frechet distance: pytorch-fid's calculate_frechet_distance logic (scipy.linalg.sqrtm of S1 S2), plus an
    exact cross-check through the nuclear norm of the centred cross-product.
  * KID: torch-fidelity's polynomial-kernel unbiased MMD^2 (kernel (x.y/d + 1)^3) on fixed subset indices.
  * ROC: sklearn.metrics.roc_auc_score and roc_curve; fast DeLong (Sun & Xu 2014) written here in numpy;
    Thorax_GAN Analysis/bootstrapping.py statistics (cutoff, confusion-matrix statistics) on fixed index sets.
  * Pearson: scipy.stats.pearsonr.
"""

import argparse
import json
import os

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.stats
import sklearn
import sklearn.metrics
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as vainf_ms_ssim

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "metrics")
WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


# ----------------------------------------------------------------------------------------------- MS-SSIM


def vainf(x, y, data_range, dtype):
    tx = torch.from_numpy(np.asarray(x, dtype=np.float64)).to(dtype)[None, None]
    ty = torch.from_numpy(np.asarray(y, dtype=np.float64)).to(dtype)[None, None]
    return float(vainf_ms_ssim(tx, ty, data_range=data_range, size_average=True))


def gaussian_1d(size, sigma=1.5):
    coords = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def valid_filter_2d(img, window):
    """Valid 2-D correlation with a dense window (the original used a dense conv2d)."""
    k = window.shape[0]
    h, w = img.shape
    out = np.zeros((h - k + 1, w - k + 1))
    for dy in range(k):
        for dx in range(k):
            out += window[dy, dx] * img[dy : dy + h - k + 1, dx : dx + w - k + 1]
    return out


def compat_ssim(x, y):
    max_val = 255.0 if x.max() > 128 else 1.0
    min_val = -1.0 if x.min() < -0.5 else 0.0
    big_l = max_val - min_val
    size = min(11, x.shape[0], x.shape[1])
    g = gaussian_1d(size)
    window = np.outer(g, g)
    mu1 = valid_filter_2d(x, window)
    mu2 = valid_filter_2d(y, window)
    s11 = valid_filter_2d(x * x, window) - mu1 * mu1
    s22 = valid_filter_2d(y * y, window) - mu2 * mu2
    s12 = valid_filter_2d(x * y, window) - mu1 * mu2
    c1 = (0.01 * big_l) ** 2
    c2 = (0.03 * big_l) ** 2
    v1 = 2.0 * s12 + c2
    v2 = s11 + s22 + c2
    cs = np.mean(v1 / v2)
    ssim = np.mean(((2 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2))
    return ssim, cs, big_l


def avg_pool_2x2_floor(img):
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    a = img[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def compat_ms_ssim(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ssims, css, ranges = [], [], []
    for _ in range(5):
        s, c, big_l = compat_ssim(x, y)
        ssims.append(s)
        css.append(c)
        ranges.append(big_l)
        x, y = avg_pool_2x2_floor(x), avg_pool_2x2_floor(y)
    ssims, css = np.array(ssims), np.array(css)
    with np.errstate(invalid="ignore"):
        value = np.prod(css[:-1] ** WEIGHTS[:-1] * ssims[-1] ** WEIGHTS[-1])
        corrected = np.prod(css[:-1] ** WEIGHTS[:-1]) * ssims[-1] ** WEIGHTS[-1]
    return float(value), float(corrected), ssims.tolist(), css.tolist(), ranges


def make_msssim(cxr_dir):
    rng = np.random.default_rng(20240601)
    names = sorted(f for f in os.listdir(cxr_dir) if f.endswith(".png"))[:8]
    real = np.stack([np.array(Image.open(os.path.join(cxr_dir, n)).convert("L")) for n in names]).astype(np.uint8)
    np.save(os.path.join(OUT, "msssim_real_u8.npy"), real)

    noise = rng.integers(0, 256, size=(2, 256, 256), dtype=np.uint8)
    # A noisy copy of a real image: a high-similarity case.
    noisy = np.clip(real[0].astype(np.int32) + rng.integers(-12, 13, size=(256, 256)), 0, 255).astype(np.uint8)
    extra = np.stack([noise[0], noise[1], noisy])
    np.save(os.path.join(OUT, "msssim_random_u8.npy"), extra)

    # Odd sizes, float data in [0, 1]: exercises VainF's padded average pooling and a data range of 1.
    base = rng.random((171, 205))
    smooth = scipy.ndimage.gaussian_filter(base, 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    float_pair = np.stack([smooth, np.clip(smooth + 0.1 * rng.standard_normal(smooth.shape), 0, 1)]).astype(np.float32)
    np.save(os.path.join(OUT, "msssim_float_odd_f32.npy"), float_pair)

    cases = []

    def add(name, array_file, i, j, x, y, data_range):
        compat, compat_fixed, ssims, css, ranges = compat_ms_ssim(x, y)
        cases.append(
            {
                "name": name,
                "file": array_file,
                "index_a": i,
                "index_b": j,
                "data_range": data_range,
                "standard_f64": vainf(x, y, data_range, torch.float64),
                "standard_f32": vainf(x, y, data_range, torch.float32),
                "compat_thorax_gan": None if np.isnan(compat) else compat,
                "compat_corrected_product": None if np.isnan(compat_fixed) else compat_fixed,
                "compat_ssim_per_scale": ssims,
                "compat_cs_per_scale": css,
                "compat_range_per_scale": ranges,
            }
        )

    for i, j in [(0, 1), (2, 3), (4, 5), (6, 7), (1, 6)]:
        add(f"cxr {names[i]} vs {names[j]}", "msssim_real_u8.npy", i, j, real[i], real[j], 255.0)
    add("uniform noise vs uniform noise", "msssim_random_u8.npy", 0, 1, extra[0], extra[1], 255.0)
    add("cxr vs noisy copy", "msssim_random_u8.npy", 2, -1, extra[2], real[0], 255.0)
    add("identical cxr", "msssim_real_u8.npy", 3, 3, real[3], real[3], 255.0)
    add("float odd size 171x205", "msssim_float_odd_f32.npy", 0, 1, float_pair[0], float_pair[1], 1.0)
    return cases


# ----------------------------------------------------------------------------------------------- Frechet


def fd_scipy(f1, f2):
    """pytorch-fid calculate_frechet_distance, on float64 statistics."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fd_nuclear(f1, f2):
    """Exact: Tr sqrt(S1 S2) = nuclear norm of X1c X2c^T / sqrt((n1-1)(n2-1))."""
    x1 = f1 - f1.mean(0)
    x2 = f2 - f2.mean(0)
    cross = x1 @ x2.T / np.sqrt((len(f1) - 1) * (len(f2) - 1))
    nuclear = np.linalg.svd(cross, compute_uv=False).sum()
    diff = f1.mean(0) - f2.mean(0)
    tr1 = (x1 * x1).sum() / (len(f1) - 1)
    tr2 = (x2 * x2).sum() / (len(f2) - 1)
    return float(diff.dot(diff) + tr1 + tr2 - 2 * nuclear)


def make_fd():
    rng = np.random.default_rng(7)
    cases = []
    specs = [
        ("200x64 vs 180x64", 200, 180, 64),
        ("rank-deficient 30x50 vs 40x50", 30, 40, 50),
        ("identical-distribution 500x16 vs 400x16", 500, 400, 16),
    ]
    for k, (name, n1, n2, d) in enumerate(specs):
        mix = rng.standard_normal((d, d)) / np.sqrt(d)
        a = (rng.standard_normal((n1, d)) @ mix + 0.5).astype(np.float32)
        if k == 2:
            b = (rng.standard_normal((n2, d)) @ mix + 0.5).astype(np.float32)
        else:
            b = (rng.gamma(2.0, 1.0, (n2, d)) @ (mix + 0.2 * np.eye(d))).astype(np.float32)
        fa, fb = f"fd_case{k}_a_f32.npy", f"fd_case{k}_b_f32.npy"
        np.save(os.path.join(OUT, fa), a)
        np.save(os.path.join(OUT, fb), b)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        cases.append(
            {
                "name": name,
                "file_a": fa,
                "file_b": fb,
                "fd_scipy_sqrtm": fd_scipy(a64, b64),
                "fd_nuclear_norm": fd_nuclear(a64, b64),
                "mean_a": a64.mean(0)[:4].tolist(),
                "cov_a_00_01_11": [float(np.cov(a64, rowvar=False)[i, j]) for i, j in [(0, 0), (0, 1), (1, 1)]],
            }
        )
    return cases


# ----------------------------------------------------------------------------------------------- KID


def mmd2_polynomial(f1, f2):
    """torch-fidelity metric_kid.mmd2 with the polynomial kernel (x.y / d + 1)^3 and equal subset sizes."""
    d = f1.shape[1]
    k11 = (f1 @ f1.T / d + 1) ** 3
    k22 = (f2 @ f2.T / d + 1) ** 3
    k12 = (f1 @ f2.T / d + 1) ** 3
    m = f1.shape[0]
    kt11 = k11.sum() - np.trace(k11)
    kt22 = k22.sum() - np.trace(k22)
    return float((kt11 + kt22) / (m * (m - 1)) - 2 * k12.sum() / (m * m))


def make_kid():
    rng = np.random.default_rng(11)
    d = 32
    a = (rng.standard_normal((120, d))).astype(np.float32)
    b = (rng.standard_normal((90, d)) * 1.1 + 0.15).astype(np.float32)
    np.save(os.path.join(OUT, "kid_a_f32.npy"), a)
    np.save(os.path.join(OUT, "kid_b_f32.npy"), b)
    subset = 50
    subsets = 7
    idx_a = np.stack([rng.choice(len(a), subset, replace=False) for _ in range(subsets)]).astype(np.int64)
    idx_b = np.stack([rng.choice(len(b), subset, replace=False) for _ in range(subsets)]).astype(np.int64)
    np.save(os.path.join(OUT, "kid_subsets_a_i64.npy"), idx_a)
    np.save(os.path.join(OUT, "kid_subsets_b_i64.npy"), idx_b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mmds = np.array([mmd2_polynomial(a64[ia], b64[ib]) for ia, ib in zip(idx_a, idx_b)])
    n = min(len(a), len(b))
    return {
        "subset_size": subset,
        "subsets": subsets,
        "mmd2_per_subset": mmds.tolist(),
        "kid_mean": float(mmds.mean()),
        "kid_std": float(mmds.std()),
        "mmd2_first_90": mmd2_polynomial(a64[:n], b64[:n]),
    }


# ----------------------------------------------------------------------------------------------- ROC


def midrank(x):
    j = np.argsort(x, kind="mergesort")
    z = x[j]
    n = len(x)
    t = np.zeros(n)
    i = 0
    while i < n:
        k = i
        while k < n and z[k] == z[i]:
            k += 1
        t[i:k] = 0.5 * (i + k - 1) + 1
        i = k
    out = np.empty(n)
    out[j] = t
    return out


def fast_delong(y_true, y_score):
    """Sun & Xu (2014) fast DeLong for one classifier: AUC and its variance."""
    pos = y_score[y_true == 1]
    neg = y_score[y_true == 0]
    m, n = len(pos), len(neg)
    tx = midrank(pos)
    ty = midrank(neg)
    tz = midrank(np.concatenate([pos, neg]))
    auc = tz[:m].sum() / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:m] - tx) / n
    v10 = 1.0 - (tz[m:] - ty) / m
    sx = np.var(v01, ddof=1)
    sy = np.var(v10, ddof=1)
    return float(auc), float(sx / m + sy / n)


def thorax_gan_cutoff(y_true, y_score, cutoff_num=10000):
    cutoffs = np.linspace(0.0, 1.0, num=cutoff_num)
    best, best_i = np.inf, None
    for i, c in enumerate(cutoffs):
        pred = (y_score > c).astype(int)
        cm = sklearn.metrics.confusion_matrix(y_true, pred, labels=[0, 1])
        tn, fp, fn, tp = cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]
        r = (1 - tn / (tn + fp)) ** 2 + (1 - tp / (tp + fn)) ** 2
        if r < best:
            best, best_i = r, i
    return float(cutoffs[best_i]), best_i


def threshold_stats(y_true, y_score, threshold):
    pred = (y_score > threshold).astype(int)
    cm = sklearn.metrics.confusion_matrix(y_true, pred, labels=[0, 1])
    tn, fp, fn, tp = [float(v) for v in (cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1])]
    return {
        "accuracy": float(sklearn.metrics.accuracy_score(y_true, pred)),
        "sensitivity": tp / (tp + fn),
        "specificity": tn / (tn + fp),
        "ppv": tp / (tp + fp),
        "npv": tn / (tn + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }


def make_roc():
    rng = np.random.default_rng(3)
    cases = []
    # Case 0: continuous scores, case 1: heavy ties (rounded), case 2: tiny hand-made with ties.
    n = 400
    y0 = (rng.random(n) < 0.3).astype(np.int64)
    s0 = 1 / (1 + np.exp(-(rng.standard_normal(n) + 1.2 * y0)))
    y1 = (rng.random(n) < 0.15).astype(np.int64)
    s1 = np.round(1 / (1 + np.exp(-(rng.standard_normal(n) + 0.8 * y1))), 1)
    y2 = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0], dtype=np.int64)
    s2 = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.9, 0.2, 0.05])
    for k, (y, s) in enumerate([(y0, s0), (y1, s1), (y2, s2)]):
        fpr, tpr, thr = sklearn.metrics.roc_curve(y, s)
        fpr_all, tpr_all, thr_all = sklearn.metrics.roc_curve(y, s, drop_intermediate=False)
        auc_delong, var_delong = fast_delong(y, s)
        cutoff, cutoff_index = thorax_gan_cutoff(y, s)
        cases.append(
            {
                "truth": y.tolist(),
                "scores": s.tolist(),
                "auc": float(sklearn.metrics.roc_auc_score(y, s)),
                "roc_fpr": fpr.tolist(),
                "roc_tpr": tpr.tolist(),
                # sklearn >= 1.3 puts +inf first; JSON has no inf, so the first threshold is written as null.
                "roc_thresholds": [None if np.isinf(t) else float(t) for t in thr],
                "roc_all_fpr": fpr_all.tolist(),
                "roc_all_tpr": tpr_all.tolist(),
                "roc_all_thresholds": [None if np.isinf(t) else float(t) for t in thr_all],
                "delong_auc": auc_delong,
                "delong_variance": var_delong,
                "delong_ci95": [
                    float(auc_delong - scipy.stats.norm.ppf(0.975) * np.sqrt(var_delong)),
                    float(auc_delong + scipy.stats.norm.ppf(0.975) * np.sqrt(var_delong)),
                ],
                "thorax_gan_cutoff": cutoff,
                "thorax_gan_cutoff_index": cutoff_index,
                "stats_at_cutoff": threshold_stats(y, s, cutoff),
            }
        )

    # Protocol statistics on fixed resample index sets (our RNG differs from pandas'; the statistics must not).
    y, s = y0, s0
    cutoff = cases[0]["thorax_gan_cutoff"]
    resamples = rng.integers(0, n, size=(25, n)).astype(np.int64)
    np.save(os.path.join(OUT, "roc_resample_indices_i64.npy"), resamples)
    per = {key: [] for key in ["auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"]}
    for idx in resamples:
        per["auc"].append(float(sklearn.metrics.roc_auc_score(y[idx], s[idx])))
        for key, value in threshold_stats(y[idx], s[idx], cutoff).items():
            per[key].append(value)
    protocol = {
        "case": 0,
        "cutoff": cutoff,
        "per_resample": per,
        "mean": {k: float(np.mean(v)) for k, v in per.items()},
        "std_ddof0": {k: float(np.std(v)) for k, v in per.items()},
        "auc_percentile_2_5": float(np.percentile(per["auc"], 2.5)),
        "auc_percentile_97_5": float(np.percentile(per["auc"], 97.5)),
    }
    return cases, protocol


# ----------------------------------------------------------------------------------------------- Pearson


def make_correlation():
    rng = np.random.default_rng(5)
    labels, n = 14, 120
    control = rng.random((labels, n))
    mixing = rng.standard_normal((labels, labels)) * 0.3 + np.eye(labels)
    probs = np.empty((labels, n, labels))
    for p in range(labels):
        logits = np.outer(control[p] * 3 - 1.5, mixing[p]) + 0.7 * rng.standard_normal((n, labels))
        probs[p] = 1 / (1 + np.exp(-logits))
    np.save(os.path.join(OUT, "corr_control_f64.npy"), control)
    np.save(os.path.join(OUT, "corr_probabilities_f64.npy"), probs)
    matrix = [[float(scipy.stats.pearsonr(control[p], probs[p][:, k])[0]) for k in range(labels)] for p in range(labels)]
    pvalues = [[float(scipy.stats.pearsonr(control[p], probs[p][:, k])[1]) for k in range(labels)] for p in range(labels)]
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    y = 0.6 * x + y
    r, pv = scipy.stats.pearsonr(x, y)
    return {
        "matrix_control_by_output": matrix,
        "pvalues": pvalues,
        "pair_x": x.tolist(),
        "pair_y": y.tolist(),
        "pair_r": float(r),
        "pair_p": float(pv),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxr-dir", default="/work/shared/data/cxr")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    roc_cases, protocol = make_roc()
    doc = {
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "torch": torch.__version__,
            "pytorch_msssim": "installed VainF pytorch-msssim",
        },
        "msssim": make_msssim(args.cxr_dir),
        "fd": make_fd(),
        "kid": make_kid(),
        "roc": roc_cases,
        "roc_protocol": protocol,
        "correlation": make_correlation(),
    }
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote", os.path.join(OUT, "golden.json"))


if __name__ == "__main__":
    main()

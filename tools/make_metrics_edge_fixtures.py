#!/usr/bin/env python3
"""Small fixtures for metric edge cases found by an audit (run once; not needed at run time).

    /tmp/audit14/py tools/make_metrics_edge_fixtures.py    (numpy, scipy, torch, pytorch-msssim, pydicom)

Writes, under tests/fixtures/metrics/:
  * fd_offset_{a,b}_f64.npy: float64 features [40, 5] with a +1e5 offset, which float32 cannot hold to better than
    ~0.008 (it was read as float32); golden FD from pytorch-fid's logic (scipy.linalg.sqrtm) and the unbiased
    MMD^2 of the whole sets (KID with one subset of every row; any order of rows gives the same value).
  * dicom12/*.dcm: 176x176 synthetic 12-bit MONOCHROME2 DICOM (constant 4x4 blocks, deflated: a few KB each), a copy shifted by +500,
    a different image, the first one stored as MONOCHROME1 (4095 - v) and a 10-bit one; golden pytorch-msssim
    values at data_range 4095 = 2^BitsStored - 1 on the stored values.
  * edge_golden.json: the values above.
"""

import json
import os

import numpy as np
import pydicom
import scipy.linalg
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pytorch_msssim import ms_ssim

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "metrics")


def fd_scipy(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
    d = mu1 - mu2
    return float(d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def mmd2(x, y):
    m, d = x.shape
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)


def mmd2_exact(x, y):
    """The same MMD^2 in exact rational arithmetic: at a 1e5 offset float64 loses ~1e-7 to cancellation."""
    from fractions import Fraction

    fx = [[Fraction(v) for v in row] for row in x]
    fy = [[Fraction(v) for v in row] for row in y]
    m, d = len(fx), len(fx[0])
    k = lambda p, q: (sum(s * t for s, t in zip(p, q)) / d + 1) ** 3
    same = sum(k(s[i], s[j]) for s in (fx, fy) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(p, q) for p in fx for q in fy)
    return float(same / (m * (m - 1)) - 2 * cross / m**2)


def make_features(golden):
    rng = np.random.default_rng(14)
    a = rng.normal(0.0, 1.0, (40, 5)) + 1e5
    b = rng.normal(0.3, 1.2, (40, 5)) + 1e5
    np.save(os.path.join(OUT, "fd_offset_a_f64.npy"), a)
    np.save(os.path.join(OUT, "fd_offset_b_f64.npy"), b)
    rounded = lambda x: x.astype(np.float32).astype(np.float64)
    golden["fd_offset"] = {
        "fd_scipy_sqrtm": fd_scipy(a, b),
        "fd_scipy_sqrtm_of_float32_rounded": fd_scipy(rounded(a), rounded(b)),
        # KID at this offset is dominated by cancellation; the whole-set MMD^2 of the centred-by-1e5 data is what
        # the float64 path must reproduce to ~1e-6, while float32 rounding moves it by far more.
        "mmd2_whole_sets_exact": mmd2_exact(a, b),
        "mmd2_whole_sets": mmd2(a, b),
        "mmd2_whole_sets_of_float32_rounded": mmd2(rounded(a), rounded(b)),
    }


def pattern(seed, freq):
    y, x = np.mgrid[0:176, 0:176].astype(np.float64)
    rng = np.random.default_rng(seed)
    base = 1600 + 900 * np.sin(x / freq) * np.cos(y / (freq * 1.3)) + 400 * np.exp(-((x - 88) ** 2 + (y - 70) ** 2) / 900)
    texture = np.kron(rng.integers(0, 40, (44, 44)), np.ones((4, 4)))
    # Constant 4x4 blocks: rows repeat, so the deflated files stay a few KB.
    blocks = np.kron(base[::4, ::4], np.ones((4, 4))) + texture
    return np.clip(np.round(blocks), 0, 3500).astype(np.uint16)


def write_dicom(path, pixels, bits, photometric="MONOCHROME2"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path).pixel_array
    assert np.array_equal(back, pixels), path


def msssim(x, y, data_range):
    t = lambda v: torch.from_numpy(v.astype(np.float64))[None, None]
    return float(ms_ssim(t(x), t(y), data_range=data_range))


def make_dicom(golden):
    folder = os.path.join(OUT, "dicom12")
    os.makedirs(folder, exist_ok=True)
    a, b = pattern(1, 9.0), pattern(2, 13.0)
    ten = (a // 4).astype(np.uint16)
    write_dicom(os.path.join(folder, "a12.dcm"), a, 12)
    write_dicom(os.path.join(folder, "a12_plus500.dcm"), a + 500, 12)
    write_dicom(os.path.join(folder, "b12.dcm"), b, 12)
    write_dicom(os.path.join(folder, "a12_mono1.dcm"), (4095 - a).astype(np.uint16), 12, "MONOCHROME1")
    write_dicom(os.path.join(folder, "a10.dcm"), ten, 10)
    golden["dicom12_msssim"] = {
        "a12_vs_a12_plus500_L4095": msssim(a, a + 500.0, 4095),
        "a12_vs_b12_L4095": msssim(a, b, 4095),
        "a12_vs_b12_L1000": msssim(a, b, 1000),
        # MONOCHROME1 is mirrored within 0..4095, so the MONOCHROME1 copy of a12 is a12 again.
        "a12_mono1_vs_b12_L4095": msssim(4095.0 - (4095.0 - a), b, 4095),
    }


def main():
    golden = {"generator": f"tools/make_metrics_edge_fixtures.py, numpy {np.__version__}, pydicom {pydicom.__version__}"}
    make_features(golden)
    make_dicom(golden)
    with open(os.path.join(OUT, "edge_golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(json.dumps(golden, indent=1))


if __name__ == "__main__":
    main()

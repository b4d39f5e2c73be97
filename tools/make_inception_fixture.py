#!/usr/bin/env python3
"""Reference fixture for the FID Inception-v3 feature extractor (src/models/inception.rs).

The published FID weights (pt_inception-2015-12-05-6726825d.pth, ~95 MB) cannot be a fixture, so this builds
pytorch-fid's own `InceptionV3` (default: pool3 block, resize_input, normalize_input, use_fid_inception) with every
float tensor filled by a formula the Rust test reproduces exactly (`formula_value` below and `formula_weights` in
src/models/inception.rs), and writes only small inputs and outputs:

- images_u8_N.npy: three uint8 gray images, 80x64, 72x96 (upsampled to 299) and 310x330 (downsampled to 299);
- resized_N.npy: pytorch-fid's network input (bilinear resize to 299x299, align_corners=False, then 2x - 1) of
  images 0 and 2, channel 0 [299, 299] (the three channels are equal for gray images);
- block{0,1,2}_mean.npy: per-channel spatial means of pytorch-fid's output blocks 0 (64), 1 (192) and 2 (768),
  [3, C], one row per image;
- pool3.npy: the 2048-d pool3 features [3, 2048], what FID uses.

Images go in as pytorch-fid's ImagePathDataset gives them: PIL `convert('RGB')` of a gray image, `ToTensor()`
(value / 255), one image per batch.

Needs pytorch-fid's source (`pip install --no-deps --target DIR pytorch-fid`, then PYTHONPATH=DIR) and the project's
Python environment (torch, torchvision, numpy):

    PYTHONPATH=/work/fid-pkgs /work/pyenv/bin/python tools/make_inception_fixture.py
"""

import os

import numpy as np
import torch
import torchvision
import pytorch_fid.inception as fid_inception

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "inception")
IMAGE_SHAPES_HW = [(80, 64), (72, 96), (310, 330)]

MASK64 = (1 << 64) - 1


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & MASK64
    return h


def unit_values(name, count):
    """Deterministic values in [-1, 1): splitmix64 of (FNV-1a of the tensor name) XOR element index, top 24 bits."""
    x = np.uint64(fnv1a64(name)) ^ np.arange(count, dtype=np.uint64)
    # uint64 arithmetic wraps, as Rust's wrapping_add / wrapping_mul do.
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0


def formula_value(name, shape):
    """The value of every float tensor: He-uniform convolutions, BatchNorm near identity with positive variance."""
    count = int(np.prod(shape))
    u = unit_values(name, count)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        values = u * np.sqrt(6.0 / fan_in)
    elif name.endswith("bn.weight"):
        values = 1.0 + 0.25 * u
    elif name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        values = 0.1 * u
    elif name.endswith("bn.running_var"):
        values = 1.0 + 0.5 * u
    elif name.startswith("fc."):
        values = 0.01 * u
    else:
        raise ValueError(f"no formula for tensor {name}")
    return torch.from_numpy(values.astype(np.float32).reshape(shape))


def template_state_dict():
    """The state_dict layout fid_inception_v3() loads the published weights into (same construction, no download)."""
    inception = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inception.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    inception.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    return inception.state_dict()


def formula_state_dict():
    state = {}
    for name, tensor in template_state_dict().items():
        if tensor.dtype.is_floating_point:
            state[name] = formula_value(name, tuple(tensor.shape))
        else:
            state[name] = tensor.clone()  # num_batches_tracked
    return state


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    state = formula_state_dict()
    # pytorch-fid's own constructor, strict load_state_dict included; only the download is replaced.
    fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    model = fid_inception.InceptionV3(output_blocks=[0, 1, 2, 3]).eval()
    rng = np.random.default_rng(20151205)
    block_means = [[], [], []]
    pool3 = []
    for index, (height, width) in enumerate(IMAGE_SHAPES_HW):
        # A smooth gradient plus noise, so the resize has structure to interpolate.
        yy, xx = np.mgrid[0:height, 0:width]
        smooth = 127.5 + 90.0 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
        image = np.clip(smooth + rng.normal(0.0, 25.0, size=(height, width)), 0, 255).round().astype(np.uint8)
        np.save(os.path.join(OUT_DIR, f"images_u8_{index}.npy"), image)
        # ImagePathDataset: Image.open(path).convert('RGB') then TF.ToTensor(): value / 255 in float32.
        rgb = torch.from_numpy(np.repeat(image[None, :, :], 3, axis=0)).float().div(255.0)[None]
        with torch.no_grad():
            outputs = model(rgb)
            if index in (0, 2):
                resized = torch.nn.functional.interpolate(rgb, size=(299, 299), mode="bilinear", align_corners=False)
                np.save(os.path.join(OUT_DIR, f"resized_{index}.npy"), (2 * resized - 1)[0, 0].numpy())
        for block in range(3):
            block_means[block].append(outputs[block][0].mean(dim=(1, 2)).numpy())
        pool3.append(outputs[3][0, :, 0, 0].numpy())
    for block in range(3):
        np.save(os.path.join(OUT_DIR, f"block{block}_mean.npy"), np.stack(block_means[block]).astype(np.float32))
    np.save(os.path.join(OUT_DIR, "pool3.npy"), np.stack(pool3).astype(np.float32))
    features = np.stack(pool3)
    print("torch", torch.__version__, "torchvision", torchvision.__version__)
    print("pool3 range", features.min(), features.max(), "mean", features.mean())
    for block in range(3):
        values = np.stack(block_means[block])
        print(f"block{block} mean range", values.min(), values.max())
    print("tensors", len(state), "first", next(iter(state)))


if __name__ == "__main__":
    main()

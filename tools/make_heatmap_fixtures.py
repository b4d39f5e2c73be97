#!/usr/bin/env python3
"""Golden heatmaps from jacobgil/pytorch-grad-cam for `src/models/heatmap.rs`.

Run once, in a venv with grad-cam (pip install grad-cam==1.5.7 opencv-python-headless) on top of torch/torchvision:

    python tools/make_heatmap_fixtures.py          # writes tests/fixtures/heatmap/

Model: the reduced-width torchvision DenseNet with the CheXNet head `Sequential(Linear, Sigmoid)` made by
tools/make_densenet_cyclegan_fixtures.py (tests/fixtures/densenet/densenet_small_module_zip.pth).
Input: tests/fixtures/densenet/cxr_0001_preprocessed.npy (a real radiograph, torchvision-preprocessed).

Variants (each for two targets, maps [2, 224, 224] float32 exactly as the CAM object's __call__ returns them):
- `rectified`: target layer = an explicit nn.ReLU after `features` (the rectified norm5 map the classifier pools),
  ClassifierOutputTarget = the probability (the model ends in Sigmoid). Grad-CAM and Grad-CAM++.
- `norm5`: the documented DenseNet target `model.features[-1]` on the unmodified torchvision model on the CPU
  (activations alias the in-place ReLU output, gradients are taken before that ReLU).
- `logit`: like `rectified` with the Sigmoid removed, so the target is the logit.
- `cam`: CAM (Zhou et al.): sum_k W[c, k] A_k with the classifier weights on the rectified map, no ReLU, then
  pytorch-grad-cam's own scale_cam_image (min-max, cv2.resize to 224), ReLU, scale_cam_image again, exactly the
  BaseCAM pipeline after the weighted sum. pytorch-grad-cam has no CAM class; this uses its scaling functions.
Also: the feature-resolution scaled maps and the raw CAM sums, and the saturated-head case (bias +100 on a target:
the probability is 1.0 in float32, the gradient is zero, pytorch-grad-cam returns an all-zero map).
"""

import json
import os

import numpy as np
import pytorch_grad_cam
import torch
import torch.nn as nn
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DENSENET_DIR = os.path.join(ROOT, "tests", "fixtures", "densenet")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "heatmap")
TARGETS = [1, 7]  # Cardiomegaly, Pneumothorax in the NIH classifier order


class Rectified(nn.Module):
    """torchvision's DenseNet forward with the final ReLU as a module (not in place), so it can be a target layer."""

    def __init__(self, densenet, with_sigmoid=True):
        super().__init__()
        self.features = densenet.features
        self.relu5 = nn.ReLU()
        self.linear = densenet.classifier[0]
        self.with_sigmoid = with_sigmoid

    def forward(self, x):
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(self.relu5(self.features(x)), 1), 1)
        logits = self.linear(pooled)
        return torch.sigmoid(logits) if self.with_sigmoid else logits


def load_densenet():
    path = os.path.join(DENSENET_DIR, "densenet_small_module_zip.pth")
    return torch.load(path, weights_only=False)["model"].eval()


def run_cam(cls, model, layer, x, target):
    with cls(model=model, target_layers=[layer]) as cam:
        out = cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        weights = cam.get_cam_weights(x, [layer], None, acts, grads)
        raw = (weights[:, :, None, None] * acts).sum(axis=1)
        scaled = scale_cam_image(np.maximum(raw, 0))
    return out[0], raw[0], scaled[0]


def class_activation_map(model, x, target):
    with torch.no_grad():
        acts = torch.relu(model.features(x)).numpy()
    weight = model.classifier[0].weight.detach().numpy()[target]
    raw = np.einsum("k,nkij->nij", weight, acts).astype(np.float32)
    scaled = scale_cam_image(raw, (x.shape[-1], x.shape[-2]))
    final = scale_cam_image(np.maximum(scaled, 0))
    return final[0], raw[0], scale_cam_image(raw)[0]


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_grad_enabled(True)
    x = torch.from_numpy(np.load(os.path.join(DENSENET_DIR, "cxr_0001_preprocessed.npy")))
    densenet = load_densenet()
    with torch.no_grad():
        probabilities = densenet(x)[0].numpy()
        logits = densenet.classifier[0](torch.flatten(nn.functional.adaptive_avg_pool2d(
            torch.relu(densenet.features(x)), 1), 1))[0].numpy()
    manifest = {
        "pytorch_grad_cam": getattr(pytorch_grad_cam, "__version__", "1.5.7"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "input": "../densenet/cxr_0001_preprocessed.npy",
        "model": "../densenet/densenet_small_module_zip.pth",
        "targets": TARGETS,
        "probabilities": [float(probabilities[t]) for t in TARGETS],
        "logits": [float(logits[t]) for t in TARGETS],
        "files": {},
    }

    def save(name, maps):
        array = np.ascontiguousarray(np.stack(maps), dtype=np.float32)
        np.save(os.path.join(OUT_DIR, name + ".npy"), array)
        manifest["files"][name] = list(array.shape)

    cams = [class_activation_map(densenet, x, t) for t in TARGETS]
    save("cam_224", [c[0] for c in cams])
    save("cam_raw", [c[1] for c in cams])
    save("cam_scaled", [c[2] for c in cams])

    variants = {
        "rectified": lambda: (lambda m: (m, m.relu5))(Rectified(load_densenet()).eval()),
        "norm5": lambda: (lambda m: (m, m.features[-1]))(load_densenet()),
        "logit": lambda: (lambda m: (m, m.relu5))(Rectified(load_densenet(), with_sigmoid=False).eval()),
    }
    for variant, make in variants.items():
        for method, cls in (("gradcam", GradCAM), ("gradcampp", GradCAMPlusPlus)):
            results = []
            for t in TARGETS:
                model, layer = make()
                results.append(run_cam(cls, model, layer, x, t))
            save(f"{method}_{variant}_224", [r[0] for r in results])
            save(f"{method}_{variant}_scaled", [r[2] for r in results])
            print(variant, method, [float(r[0].max()) for r in results], [float(r[2].max()) for r in results])

    # Saturated head: the probability of target 1 is 1.0 in float32, so its gradient is exactly zero.
    saturated = load_densenet()
    with torch.no_grad():
        saturated.classifier[0].bias[TARGETS[0]] += 100.0
    model = Rectified(saturated).eval()
    out, _, _ = run_cam(GradCAM, model, model.relu5, x, TARGETS[0])
    out_pp, _, _ = run_cam(GradCAMPlusPlus, model, model.relu5, x, TARGETS[0])
    with torch.no_grad():
        p = float(model(x)[0, TARGETS[0]])
    manifest["saturated"] = {
        "target": TARGETS[0],
        "bias_added": 100.0,
        "probability": p,
        "gradcam_max": float(np.abs(out).max()),
        "gradcampp_max": float(np.abs(out_pp).max()),
        "any_nan": bool(np.isnan(out).any() or np.isnan(out_pp).any()),
    }
    print("saturated", manifest["saturated"])
    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()

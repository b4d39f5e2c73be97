#!/usr/bin/env python3
"""Reference fixtures for the DenseNet-121 classifier, the CycleGAN generator and classifier preprocessing.

Run once with the project's Python environment (torch, torchvision, pillow, numpy):

    /work/pyenv/bin/python tools/make_densenet_cyclegan_fixtures.py            # writes tests/fixtures/{densenet,cyclegan}
    /work/pyenv/bin/python tools/make_densenet_cyclegan_fixtures.py --full DIR # full-size checks (~75 MB, not committed)

What it writes (all random weights, fixed seeds):
- densenet/: a torchvision DenseNet (full 6/12/24/16 block layout, reduced growth and stem width so the files stay
  small) with randomised BatchNorm statistics and `classifier = Sequential(Linear, Sigmoid)` as in reproduce-chexnet,
  saved three ways: the original's legacy-format pickled whole-module checkpoint
  (`{'model': module, 'best_loss', 'epoch', 'rng_state', 'LR'}`), the same module in the zip format, and a zip
  `{'state_dict': ...}` with a `module.` prefix and torchvision 0.2 key names (`norm.1`, `conv.1`); plain zip
  state_dicts are covered by the CycleGAN fixture; fresh random inputs and the reference probabilities and pooled
  features; two real radiographs and torchvision's preprocessing of them (PIL convert('RGB'), Resize(224),
  CenterCrop(224), ToTensor, Normalize).
- cyclegan/: junyanz ResnetGenerators (1-channel zip state_dict; 3-channel legacy-format state_dict carrying stale
  InstanceNorm running stats as old checkpoints do), inputs in [-1, 1] and reference outputs.
"""

import argparse
import functools
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DENSENET_DIR = os.path.join(ROOT, "tests", "fixtures", "densenet")
CYCLEGAN_DIR = os.path.join(ROOT, "tests", "fixtures", "cyclegan")
REAL_IMAGES = ["/work/shared/data/cxr-full/cxr_0001.png", "/work/shared/data/cxr-full/cxr_0054.png"]


# --- junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py, verbatim in structure -------------------------------
class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout, use_bias)

    def build_conv_block(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        conv_block = []
        p = 0
        if padding_type == "reflect":
            conv_block += [nn.ReflectionPad2d(1)]
        else:
            raise NotImplementedError(padding_type)
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]
        conv_block += [nn.ReflectionPad2d(1)]
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
        return nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 padding_type="reflect"):
        super().__init__()
        if type(norm_layer) == functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type, norm_layer=norm_layer,
                                  use_dropout=use_dropout, use_bias=use_bias)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


INSTANCE_NORM = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


def save_npy(directory, name, array):
    np.save(os.path.join(directory, name), np.ascontiguousarray(array, dtype=np.float32))


def randomise_densenet(model, generator):
    """Random weights everywhere, BatchNorm statistics included, scaled so 58 layers neither explode nor vanish."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) * 0.5 + 0.5)
            elif isinstance(module, nn.Linear):
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.5)


def densenet_with_chexnet_head(growth_rate, block_config, num_init_features, num_labels, seed):
    torch.manual_seed(seed)
    model = torchvision.models.DenseNet(growth_rate=growth_rate, block_config=block_config,
                                        num_init_features=num_init_features)
    num_features = model.classifier.in_features
    model.classifier = nn.Sequential(nn.Linear(num_features, num_labels), nn.Sigmoid())
    generator = torch.Generator().manual_seed(seed + 1)
    randomise_densenet(model, generator)
    model.eval()
    # Scale the head so the probabilities spread over (0, 1) instead of saturating, which would hide logit errors.
    with torch.no_grad():
        calibration = torch.randn(4, 3, 224, 224, generator=generator)
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(model.features(calibration)), 1), 1)
        linear = model.classifier[0]
        weight = torch.randn(linear.weight.shape, generator=generator) / (pooled.std() * num_features ** 0.5)
        linear.weight.copy_(weight * 2.0)
        linear.bias.copy_(-(pooled.mean(0) @ linear.weight.T) + torch.randn(num_labels, generator=generator) * 0.5)
    return model


def densenet_reference(model, inputs):
    with torch.no_grad():
        probabilities = model(inputs)
        features = torch.relu(model.features(inputs))
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(features, (1, 1)), 1)
    return probabilities, features, pooled


def old_torchvision_name(key):
    """torchvision 0.2 named the dense layers' modules `norm.1`, `relu.1`, `conv.1`, `norm.2`, ..."""
    for part in ("norm1", "conv1", "norm2", "conv2"):
        key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
    return key


def make_densenet(directory):
    os.makedirs(directory, exist_ok=True)
    model = densenet_with_chexnet_head(growth_rate=6, block_config=(6, 12, 24, 16), num_init_features=12,
                                       num_labels=14, seed=1234)
    state = model.state_dict()
    # The same whole-module checkpoint re-saved by PyTorch >= 1.6 (zip format, module classes as plain globals).
    torch.save({"model": model, "epoch": 7}, os.path.join(directory, "densenet_small_module_zip.pth"))
    # The original checkpoint: the whole pickled module in the legacy (pre-1.6) format, as `retrain.py` wrote it.
    checkpoint = {"model": model, "best_loss": 0.1234, "epoch": 7, "rng_state": torch.get_rng_state(), "LR": 0.001}
    torch.save(checkpoint, os.path.join(directory, "densenet_small_module_legacy.pth"),
               _use_new_zipfile_serialization=False)
    old = {"module." + old_torchvision_name(k): v for k, v in state.items()}
    assert any(".norm.1." in k for k in old)
    torch.save({"state_dict": old, "epoch": 3}, os.path.join(directory, "densenet_small_old_names.pth"))

    torch.manual_seed(99)
    inputs = torch.randn(2, 3, 224, 224)
    probabilities, features, pooled = densenet_reference(model, inputs)
    print("densenet probabilities range", probabilities.min().item(), probabilities.max().item())
    print("densenet probabilities", probabilities)
    print("feature map", tuple(features.shape), "pooled range", pooled.min().item(), pooled.max().item())
    save_npy(directory, "input.npy", inputs.numpy())
    save_npy(directory, "expected_probabilities.npy", probabilities.numpy())
    save_npy(directory, "expected_pooled.npy", pooled.numpy())

    # Preprocessing exactly as reproduce-chexnet's evaluation transform (transforms.Scale is today's Resize).
    preprocess = transforms.Compose([
        transforms.Resize(224),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    for path in REAL_IMAGES:
        name = os.path.splitext(os.path.basename(path))[0]
        shutil.copyfile(path, os.path.join(directory, name + ".png"))
        image = Image.open(path).convert("RGB")
        tensor = preprocess(image).unsqueeze(0)
        print("preprocessed", name, image.size, "->", tuple(tensor.shape))
        save_npy(directory, f"{name}_preprocessed.npy", tensor.numpy())


def make_full_densenet(directory):
    """Full-width densenet121 with the CheXNet head and a full resnet_9blocks: too large to commit, checked by
    ignored tests (THORAX_DENSENET_FULL_DIR=DIR cargo test -- --ignored)."""
    os.makedirs(directory, exist_ok=True)
    model = densenet_with_chexnet_head(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                                       num_labels=14, seed=4321)
    reference = torchvision.models.densenet121()
    assert set(reference.features.state_dict().keys()) == set(model.features.state_dict().keys())
    torch.save(model.state_dict(), os.path.join(directory, "densenet121_full.pth"))
    torch.manual_seed(7)
    inputs = torch.randn(1, 3, 224, 224)
    probabilities, _, pooled = densenet_reference(model, inputs)
    print("full densenet probabilities", probabilities)
    save_npy(directory, "input.npy", inputs.numpy())
    save_npy(directory, "expected_probabilities.npy", probabilities.numpy())
    save_npy(directory, "expected_pooled.npy", pooled.numpy())
    # Full-size junyanz resnet_9blocks (ngf 64), grayscale, the NIH2CheXpert shape, at 256 px.
    torch.manual_seed(11)
    net = ResnetGenerator(1, 1, ngf=64, norm_layer=INSTANCE_NORM, n_blocks=9).eval()
    random_biases(net, torch.Generator().manual_seed(12))
    torch.save(net.state_dict(), os.path.join(directory, "latest_net_G_A.pth"))
    inputs = torch.rand(1, 1, 256, 256) * 2 - 1
    with torch.no_grad():
        outputs = net(inputs)
    save_npy(directory, "cyclegan_input.npy", inputs.numpy())
    save_npy(directory, "cyclegan_expected.npy", outputs.numpy())


def random_biases(model, generator):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


def make_cyclegan(directory):
    os.makedirs(directory, exist_ok=True)
    cases = [
        # name, channels, ngf, n_blocks, input shape, legacy format with stale running stats
        ("gray_ngf8_b3", 1, 8, 3, (2, 1, 64, 64), False),
        ("rgb_ngf8_b2", 3, 8, 2, (1, 3, 44, 60), True),
    ]
    for name, channels, ngf, n_blocks, shape, legacy in cases:
        torch.manual_seed(len(name) * 31 + n_blocks)
        net = ResnetGenerator(channels, channels, ngf=ngf, norm_layer=INSTANCE_NORM, n_blocks=n_blocks).eval()
        random_biases(net, torch.Generator().manual_seed(5 + n_blocks))
        state = net.state_dict()
        if legacy:
            # Checkpoints from PyTorch < 0.4 carry InstanceNorm running stats (junyanz #262); the converter drops them.
            for index in (2, 5, 8):
                state[f"model.{index}.running_mean"] = torch.zeros(ngf * 2 ** ((index - 2) // 3))
                state[f"model.{index}.running_var"] = torch.ones(ngf * 2 ** ((index - 2) // 3))
            state[f"model.10.conv_block.2.running_mean"] = torch.zeros(ngf * 4)
            torch.save(state, os.path.join(directory, f"{name}.pth"), _use_new_zipfile_serialization=False)
        else:
            torch.save(state, os.path.join(directory, f"{name}.pth"))
        inputs = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            outputs = net(inputs)
        print("cyclegan", name, tuple(outputs.shape), "range", outputs.min().item(), outputs.max().item())
        save_npy(directory, f"{name}_input.npy", inputs.numpy())
        save_npy(directory, f"{name}_expected.npy", outputs.numpy())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", metavar="DIR", help="also write the full-width DenseNet-121 check to DIR")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("torch", torch.__version__, "torchvision", torchvision.__version__, "numpy", np.__version__,
          "pillow", Image.__version__, file=sys.stderr)
    make_densenet(DENSENET_DIR)
    make_cyclegan(CYCLEGAN_DIR)
    if args.full:
        make_full_densenet(args.full)


if __name__ == "__main__":
    main()

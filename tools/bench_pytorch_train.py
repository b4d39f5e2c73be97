#!/usr/bin/env python3
"""One training step of `thorax train gan` / `classifier` / `cyclegan`, in PyTorch, timed (not run in CI).

For BENCHMARKS.md: our step time against PyTorch's on the same card (issue #4 goal 4: at most 2x PyTorch TF32).
Random data of the real shapes (speed does not depend on the values); every setting that changes the work done per
step mirrors our trainers.

gan (src/train/gan_trainer.rs `train_step`, defaults of src/cli/train.rs):
  - G_paper at lod 0 (src/train/generator.rs): pixel norm of [latent 512, 14 labels], 4x4/Dense, 4x4/Conv, per
    resolution the fused upscale Conv0_up (3x3 kernel padded to 4x4 and summed, stride-2 transposed convolution;
    --upscale subpixel runs it as our four 2x2 phase kernels in one conv2d instead) and Conv1, each with bias,
    leaky ReLU 0.2 and pixel norm; linear 1x1 ToRGB to 1 channel.
  - D (src/train/discriminator.rs): 1x1 FromRGB, per resolution a 3x3 Conv0 and a 3x3 Conv1_down + 2x2 average
    pooling, minibatch stddev (group 4) at 4x4, 3x3 Conv, Dense0, Dense1 with 1 + 14 outputs (AC-GAN head).
  - nf(stage) = min(floor(fmap_base / 2^stage), fmap_max) (stage 8 uses nf(7)); fmap_base 8192, fmap_max 128.
  - Equalised learning rate: parameters N(0, 1) (biases 0), multiplied by gain / sqrt(fan_in) in every forward.
  - Losses (src/train/gan_loss.rs): non-saturating logistic plus the AC-GAN sigmoid cross-entropy summed over the
    labels, mean over the batch, weight 1 (D: on reals; G: on fakes against the labels they were made with). No R1
    or other gradient penalty (ours has none).
  - DiffAugment translation (1/8 of the side, zero fill) + cutout (half the side) on everything D sees
    (src/train/augment.rs), drawn per image.
  - One step = D update (fakes from G without gradients; D scores reals and fakes in two separate passes, as the
    minibatch stddev groups are per pass) + G update (D frozen: gradients reach only its input) + EMA of G
    (beta min(0.999, (1 + t) / (10 + t)), src/train/ema.rs). Adam lr 0.002, betas (0, 0.99), eps 1e-8, no weight
    decay, for both (src/train/adam.rs). Batch 16 at 64 px by default. The losses are read back to the host once
    per step (ours reads them to check they are finite and to log them).
classifier (src/train/classifier_trainer.rs `train_step`, src/train/densenet_train.rs, src/cli/train_classifier.rs):
  - DenseNet-121 layout (blocks 6,12,24,16, growth 32, bn_size 4, stem 64) with 14 outputs, BatchNorm in train
    mode (momentum 0.1), on [B, 3, R, R] (the grey image in all 3 channels, ImageNet normalisation), R = 224.
    torchvision's densenet121 when the configuration is the standard one, else our own small variant with the same
    layer names and order.
  - Random translation of up to R/16 px per image, edge pixels repeated; masked BCE with logits (mean over
    annotated entries); SGD lr 0.01, momentum 0.9, weight decay 1e-4 (on every parameter, as ours); batch 16.
    The loss is read back once per step (ours checks it is finite).

cyclegan (src/train/cyclegan_trainer.rs `train_step`): junyanz's optimize_parameters with 1-channel images: the
  ResnetGenerator (instance norm without affine, reflection padding, no dropout) and the 70x70 PatchGAN (3 layers,
  instance norm), N(0, 0.02) weights and zero biases; G update (D frozen) on LSGAN + cycle (10, 10) + identity
  (0.5) L1 losses, then the D update on 0.5 * (real + fake) with 50-image pools; one Adam (0.0002, 0.5, 0.999) per
  pair of networks; batch 1 by default in ours (pass --batch 1).

Parameter counts of ours (from the tensor shapes in src/models/progan.rs `tensor_specs`,
src/train/discriminator.rs `discriminator_specs` and src/models/densenet.rs `tensor_shapes`; latent 512,
14 labels, 1 channel, fmap_base 8192); the script prints its own, which must be equal:
  GAN                          G params     D params
  32 px,  fmap_max 128       2,110,593    1,298,703
  64 px,  fmap_max 32          352,609      100,495
  64 px,  fmap_max 128       2,405,761    1,593,871   (the `thorax train gan` default)
  128 px, fmap_max 128       2,700,929    1,889,039
  128 px, fmap_max 256       7,908,225    6,808,719
  256 px, fmap_max 128       2,811,585    1,999,695
  256 px, fmap_max 512      23,151,553   23,049,679   (the original's widths)
  Classifier (trainable parameters, BatchNorm running statistics excluded)
  DenseNet-121, growth 32, 14 labels   6,968,206      (the `thorax train classifier` default)
  growth 12 (blocks 6,12,24,16)        1,063,836
  growth 8                               506,446

Precision: f32 turns TF32 off for matmuls and cuDNN convolutions, tf32 turns both on, bf16 runs the forward
passes and losses under torch.autocast(bfloat16) (TF32 on for what stays float32). cudnn.benchmark is on unless
--no-cudnn-benchmark. Timing: --warmup untimed steps, then --steps steps each between two
torch.cuda.synchronize() calls; median and minimum ms per step; images/s = batch / median step time.

Usage:
  python tools/bench_pytorch_train.py gan --device cuda --precision tf32 --resolution 64 --fmap-max 128 --batch 16
  python tools/bench_pytorch_train.py classifier --device cuda --precision f32 --resolution 224 --batch 16 --json
  /work/pyenv/bin/python tools/bench_pytorch_train.py gan --resolution 32 --batch 4 --steps 2 --warmup 1 --device cpu
"""

import argparse
import json
import math
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_LABELS = 14
LEAKY_SLOPE = 0.2
PIXEL_NORM_EPS = 1e-8
MBSTD_GROUP = 4
SQRT2 = math.sqrt(2.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# For each output parity, the taps of the summed 4x4 kernel read at window positions 0 and 1 (as ours).
PHASE_TAPS = ((3, 1), (2, 0))


# --- ProGAN generator and discriminator with the equalised learning rate ----------------------------------------

def nf_of(fmap_base, fmap_max):
    def nf(stage):
        stage = stage - 1 if stage >= 8 else stage
        return min(int(math.floor(fmap_base / 2.0 ** stage)), fmap_max)
    return nf


def pixel_norm(x):
    return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + PIXEL_NORM_EPS)


def scaled_param(shape, gain, fan_in):
    """A weight stored N(0, 1) with its runtime scale gain / sqrt(fan_in)."""
    return nn.Parameter(torch.randn(shape)), gain / math.sqrt(fan_in)


class Generator(nn.Module):
    """G_paper at lod 0, as src/train/generator.rs."""

    def __init__(self, resolution, fmap_max, fmap_base, latent, labels, channels=1, upscale="transposed"):
        super().__init__()
        nf = nf_of(fmap_base, fmap_max)
        self.upscale = upscale
        self.c4 = nf(1)
        combo = latent + labels
        self.dense_w, self.dense_s = scaled_param((combo, self.c4 * 16), SQRT2 / 4.0, combo)
        self.dense_b = nn.Parameter(torch.zeros(self.c4))
        self.conv4_w, self.conv4_s = scaled_param((self.c4, self.c4, 3, 3), SQRT2, 9 * self.c4)
        self.conv4_b = nn.Parameter(torch.zeros(self.c4))
        self.up_w = nn.ParameterList()  # conv_transpose layout [in, out, 3, 3]
        self.up_b = nn.ParameterList()
        self.conv1_w = nn.ParameterList()
        self.conv1_b = nn.ParameterList()
        self.up_s, self.conv1_s = [], []
        maps_in = self.c4
        for res_log2 in range(3, int(math.log2(resolution)) + 1):
            maps_out = nf(res_log2 - 1)
            w, s = scaled_param((maps_in, maps_out, 3, 3), SQRT2, 9 * maps_in)
            self.up_w.append(w)
            self.up_s.append(s)
            self.up_b.append(nn.Parameter(torch.zeros(maps_out)))
            w, s = scaled_param((maps_out, maps_out, 3, 3), SQRT2, 9 * maps_out)
            self.conv1_w.append(w)
            self.conv1_s.append(s)
            self.conv1_b.append(nn.Parameter(torch.zeros(maps_out)))
            maps_in = maps_out
        self.rgb_w, self.rgb_s = scaled_param((channels, maps_in, 1, 1), 1.0, maps_in)
        self.rgb_b = nn.Parameter(torch.zeros(channels))

    @staticmethod
    def _act_norm(x, bias):
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        return pixel_norm(F.leaky_relu(x + bias.view(shape), LEAKY_SLOPE))

    def _upscale(self, x, weight):
        # The 3x3 kernel padded to 4x4 and summed over its four shifts (the original's fused upscale).
        w = F.pad(weight, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        if self.upscale == "transposed":
            return F.conv_transpose2d(x, w, stride=2, padding=1)
        # Ours: four 2x2 phase kernels in one conv2d (padding 1), each phase narrowed and interleaved.
        n, _, h, wd = x.shape
        maps_out = w.shape[1]
        kernels = [w[:, :, list(rows)][:, :, :, list(cols)].transpose(0, 1) for rows in PHASE_TAPS for cols in PHASE_TAPS]
        phases = F.conv2d(x, torch.cat(kernels, 0), padding=1)

        def phase(a, b):
            k = 2 * a + b
            return phases[:, k * maps_out:(k + 1) * maps_out, a:a + h, b:b + wd]

        even = torch.stack([phase(0, 0), phase(0, 1)], -1)
        odd = torch.stack([phase(1, 0), phase(1, 1)], -1)
        return torch.stack([even, odd], 3).reshape(n, maps_out, 2 * h, 2 * wd)

    def forward(self, latents, labels):
        n = latents.shape[0]
        x = pixel_norm(torch.cat([latents, labels], 1))
        x = (x @ (self.dense_w * self.dense_s)).view(n, self.c4, 4, 4)
        x = self._act_norm(x, self.dense_b)
        x = self._act_norm(F.conv2d(x, self.conv4_w * self.conv4_s, padding=1), self.conv4_b)
        for i in range(len(self.up_w)):
            x = self._act_norm(self._upscale(x, self.up_w[i] * self.up_s[i]), self.up_b[i])
            x = self._act_norm(F.conv2d(x, self.conv1_w[i] * self.conv1_s[i], padding=1), self.conv1_b[i])
        return F.conv2d(x, self.rgb_w * self.rgb_s) + self.rgb_b.view(1, -1, 1, 1)


def minibatch_stddev(x, group=MBSTD_GROUP):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, n // g, c, h, w)  # sample i sits in slot i mod (n / g), as TF's reshape
    y = y - y.mean(0, keepdim=True)
    std = torch.sqrt(torch.mean(y * y, 0) + 1e-8)  # [slots, C, H, W]
    per_slot = std.flatten(1).mean(1)
    maps = per_slot.view(1, -1, 1, 1, 1).expand(g, n // g, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, maps], 1)


class Discriminator(nn.Module):
    """D_paper at full resolution with the AC-GAN head, as src/train/discriminator.rs."""

    def __init__(self, resolution, fmap_max, fmap_base, labels, channels=1):
        super().__init__()
        nf = nf_of(fmap_base, fmap_max)
        top = int(math.log2(resolution))
        self.rgb_w, self.rgb_s = scaled_param((nf(top - 1), channels, 1, 1), SQRT2, channels)
        self.rgb_b = nn.Parameter(torch.zeros(nf(top - 1)))
        self.conv0_w, self.conv0_b, self.down_w, self.down_b = (nn.ParameterList() for _ in range(4))
        self.conv0_s, self.down_s = [], []
        for res_log2 in range(top, 2, -1):
            maps_in, maps_out = nf(res_log2 - 1), nf(res_log2 - 2)
            w, s = scaled_param((maps_in, maps_in, 3, 3), SQRT2, 9 * maps_in)
            self.conv0_w.append(w)
            self.conv0_s.append(s)
            self.conv0_b.append(nn.Parameter(torch.zeros(maps_in)))
            w, s = scaled_param((maps_out, maps_in, 3, 3), SQRT2, 9 * maps_in)
            self.down_w.append(w)
            self.down_s.append(s)
            self.down_b.append(nn.Parameter(torch.zeros(maps_out)))
        c4 = nf(1)
        self.conv4_w, self.conv4_s = scaled_param((c4, c4 + 1, 3, 3), SQRT2, 9 * (c4 + 1))
        self.conv4_b = nn.Parameter(torch.zeros(c4))
        self.dense0_w, self.dense0_s = scaled_param((c4 * 16, nf(0)), SQRT2, c4 * 16)
        self.dense0_b = nn.Parameter(torch.zeros(nf(0)))
        self.dense1_w, self.dense1_s = scaled_param((nf(0), 1 + labels), 1.0, nf(0))
        self.dense1_b = nn.Parameter(torch.zeros(1 + labels))

    @staticmethod
    def _bias_act(x, bias):
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        return F.leaky_relu(x + bias.view(shape), LEAKY_SLOPE)

    def forward(self, images):
        x = self._bias_act(F.conv2d(images, self.rgb_w * self.rgb_s), self.rgb_b)
        for i in range(len(self.conv0_w)):
            x = self._bias_act(F.conv2d(x, self.conv0_w[i] * self.conv0_s[i], padding=1), self.conv0_b[i])
            down = F.avg_pool2d(F.conv2d(x, self.down_w[i] * self.down_s[i], padding=1), 2)
            x = self._bias_act(down, self.down_b[i])
        x = minibatch_stddev(x)
        x = self._bias_act(F.conv2d(x, self.conv4_w * self.conv4_s, padding=1), self.conv4_b)
        x = self._bias_act(x.flatten(1) @ (self.dense0_w * self.dense0_s), self.dense0_b)
        out = x @ (self.dense1_w * self.dense1_s) + self.dense1_b
        return out[:, 0], out[:, 1:]


def diff_augment(images):
    """DiffAugment translation (zero fill, up to 1/8 of the side) then cutout (half the side), per image."""
    n, _, h, w = images.shape
    dev = images.device
    radius = int(round(min(h, w) * 0.125))
    if radius > 0:
        padded = F.pad(images, (radius, radius, radius, radius))
        dy = torch.randint(-radius, radius + 1, (n, 1), device=dev)
        dx = torch.randint(-radius, radius + 1, (n, 1), device=dev)
        rows = torch.arange(h, device=dev).view(1, h) + radius + dy  # [N, H]
        cols = torch.arange(w, device=dev).view(1, w) + radius + dx  # [N, W]
        batch = torch.arange(n, device=dev).view(n, 1, 1)
        images = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    cut_h, cut_w = int(round(h * 0.5)), int(round(w * 0.5))
    cy = torch.randint(0, h + (1 - cut_h % 2), (n, 1), device=dev)
    cx = torch.randint(0, w + (1 - cut_w % 2), (n, 1), device=dev)
    top, left = (cy - cut_h // 2).clamp(0, h), (cx - cut_w // 2).clamp(0, w)
    bottom, right = (cy - cut_h // 2 + cut_h).clamp(0, h), (cx - cut_w // 2 + cut_w).clamp(0, w)
    ys = torch.arange(h, device=dev).view(1, h)
    xs = torch.arange(w, device=dev).view(1, w)
    inside = ((ys >= top) & (ys < bottom))[:, :, None] & ((xs >= left) & (xs < right))[:, None, :]
    return images * (~inside).to(images.dtype)[:, None]


def label_loss(logits, targets, mask):
    """Sigmoid cross-entropy summed over the labels where mask is 1, averaged over the batch."""
    per_label = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per_label * mask).sum(1).mean()


def make_gan_step(args, device, autocast):
    res, batch = args.resolution, args.batch
    G = Generator(res, args.fmap_max, args.fmap_base, args.latent_size, NUM_LABELS, upscale=args.upscale).to(device)
    D = Discriminator(res, args.fmap_max, args.fmap_base, NUM_LABELS).to(device)
    ema = [p.detach().clone() for p in G.parameters()]
    adam = dict(lr=args.lr, betas=(0.0, 0.99), eps=1e-8, weight_decay=0.0, **optim_impl(args))
    opt_g = torch.optim.Adam(G.parameters(), **adam)
    opt_d = torch.optim.Adam(D.parameters(), **adam)
    # A small grey 8-bit data set and 0/1 label rows in host memory, uploaded per step as ours does.
    rows = max(64, 2 * batch)
    data_u8 = torch.randint(0, 256, (rows, 1, res, res), dtype=torch.uint8)
    data_labels = (torch.rand(rows, NUM_LABELS) < 0.2).float()
    data_masks = torch.ones(rows, NUM_LABELS)
    augment = diff_augment if not args.no_augment else (lambda x: x)
    state = {"step": 0}

    def step():
        t = state["step"]
        real_rows = torch.randint(0, rows, (batch,))
        real = data_u8[real_rows].to(device).float() / 127.5 - 1.0
        real_labels, real_masks = data_labels[real_rows].to(device), data_masks[real_rows].to(device)
        fake_labels = data_labels[torch.randint(0, rows, (batch,))].to(device)
        latents = torch.randn(batch, args.latent_size, device=device)
        # D update: fakes without gradients, reals and fakes scored in separate passes.
        with autocast():
            with torch.no_grad():
                fake = G(latents, fake_labels)
            real_logit, real_label_logits = D(augment(real))
            fake_logit, _ = D(augment(fake))
            real_logit, fake_logit = real_logit.float(), fake_logit.float()
            d_adv = F.softplus(fake_logit).mean() + F.softplus(-real_logit).mean()
            d_label = label_loss(real_label_logits.float(), real_labels, real_masks)
            d_total = d_adv + args.label_weight * d_label
        opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        opt_d.step()
        # G update: D frozen, gradients reach only its input.
        g_rows = torch.randint(0, rows, (batch,))
        g_labels, g_masks = data_labels[g_rows].to(device), data_masks[g_rows].to(device)
        latents = torch.randn(batch, args.latent_size, device=device)
        D.requires_grad_(False)
        with autocast():
            fake_logit_g, fake_label_logits = D(augment(G(latents, g_labels)))
            g_adv = F.softplus(-fake_logit_g.float()).mean()
            g_label = label_loss(fake_label_logits.float(), g_labels, g_masks)
            g_total = g_adv + args.label_weight * g_label
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        D.requires_grad_(True)
        # EMA of G with the ramped decay.
        beta = min(args.ema_beta, (1.0 + t) / (10.0 + t))
        with torch.no_grad():
            for average, param in zip(ema, G.parameters()):
                average.lerp_(param, 1.0 - beta)
        state["step"] = t + 1
        losses = torch.stack([d_total, d_adv, d_label, real_logit.mean(), fake_logit.mean(), g_total, g_adv, g_label])
        values = losses.tolist()
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"non-finite loss at step {t}: {values}")
        return values

    params = {"generator": count(G), "discriminator": count(D)}
    return step, params


# --- DenseNet classifier -----------------------------------------------------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, channels_in, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(channels_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(self.relu1(self.norm1(x)))
        return torch.cat([x, self.conv2(self.relu2(self.norm2(y)))], 1)


class SmallDenseNet(nn.Module):
    """DenseNet with a free growth rate, bottleneck, stem width and block layout; the layer names and order of
    torchvision's (`features.denseblockN.denselayerM.*`, `features.transitionN.*`, `classifier`)."""

    def __init__(self, growth, bn_size, init_features, blocks, labels):
        super().__init__()
        layers = [
            ("conv0", nn.Conv2d(3, init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        channels = init_features
        for b, count_in_block in enumerate(blocks):
            block = nn.Sequential()
            for i in range(count_in_block):
                block.add_module(f"denselayer{i + 1}", DenseLayer(channels + i * growth, growth, bn_size))
            layers.append((f"denseblock{b + 1}", block))
            channels += count_in_block * growth
            if b + 1 < len(blocks):
                transition = nn.Sequential()
                transition.add_module("norm", nn.BatchNorm2d(channels))
                transition.add_module("relu", nn.ReLU(inplace=True))
                transition.add_module("conv", nn.Conv2d(channels, channels // 2, 1, bias=False))
                transition.add_module("pool", nn.AvgPool2d(2, stride=2))
                layers.append((f"transition{b + 1}", transition))
                channels //= 2
        layers.append(("norm5", nn.BatchNorm2d(channels)))
        self.features = nn.Sequential()
        for name, module in layers:
            self.features.add_module(name, module)
        self.classifier = nn.Linear(channels, labels)

    def forward(self, x):
        x = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def classifier_network(args):
    standard = (args.growth, args.bn_size, args.num_init_features, args.block_config) == (32, 4, 64, [6, 12, 24, 16])
    if args.densenet == "torchvision" or (args.densenet == "auto" and standard):
        if not standard:
            raise SystemExit("--densenet torchvision needs the standard DenseNet-121 configuration")
        import torchvision
        return torchvision.models.densenet121(weights=None, num_classes=NUM_LABELS), "torchvision densenet121"
    net = SmallDenseNet(args.growth, args.bn_size, args.num_init_features, args.block_config, NUM_LABELS)
    return net, f"own DenseNet (growth {args.growth}, bn_size {args.bn_size}, blocks {args.block_config})"


def make_classifier_step(args, device, autocast):
    res, batch = args.resolution, args.batch
    net, description = classifier_network(args)
    net = net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4, **optim_impl(args))
    shift = args.resolution // 16 if args.max_shift_px is None else args.max_shift_px
    rows = max(64, 2 * batch)
    data_u8 = torch.randint(0, 256, (rows, res, res), dtype=torch.uint8)
    data_labels = (torch.rand(rows, NUM_LABELS) < 0.2).float()
    data_masks = torch.ones(rows, NUM_LABELS)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    axis = torch.arange(res, device=device).view(1, res)

    def step():
        picked = torch.randint(0, rows, (batch,))
        grey = data_u8[picked].to(device).float() / 255.0  # [B, R, R]
        labels, masks = data_labels[picked].to(device), data_masks[picked].to(device)
        if shift > 0:
            # Translation with the edge pixels repeated: out[y, x] = in[clamp(y - dy), clamp(x - dx)].
            dy = torch.randint(-shift, shift + 1, (batch, 1), device=device)
            dx = torch.randint(-shift, shift + 1, (batch, 1), device=device)
            src_rows = (axis - dy).clamp(0, res - 1)
            src_cols = (axis - dx).clamp(0, res - 1)
            grey = grey[torch.arange(batch, device=device).view(batch, 1, 1), src_rows[:, :, None], src_cols[:, None, :]]
        x = (grey[:, None] - mean) / std  # [B, 3, R, R]
        with autocast():
            logits = net(x).float()
            per_entry = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
            loss = (per_entry * masks).sum() / masks.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"non-finite loss: {value}")
        return [value]

    return step, {"classifier": count(net), "network": description}


# --- CycleGAN (junyanz ResnetGenerator + 70x70 PatchGAN) ----------------------------------------------------------

def resnet_generator(channels, ngf, n_blocks):
    """junyanz ResnetGenerator, norm 'instance' (affine off, no running stats), no dropout, reflection padding."""
    def norm(c):
        return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c), nn.ReLU(True),
                                            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c))

        def forward(self, x):
            return x + self.conv_block(x)

    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1), norm(ngf * m * 2), nn.ReLU(True)]
    layers += [Block(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1),
                   norm(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(channels, ndf, n_layers=3):
    """junyanz NLayerDiscriminator with instance norm (bias on every conv, as junyanz with InstanceNorm)."""
    layers = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2 ** n, 8)
        stride = 2 if n < n_layers else 1
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1),
                   nn.InstanceNorm2d(ndf * mult, affine=False, track_running_stats=False), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
    return nn.Sequential(*layers)


class ImagePool:
    """junyanz ImagePool: until full, store and return; then with probability 1/2 swap for a stored image."""

    def __init__(self, size):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for image in images:
            image = image.detach().unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(1).item() > 0.5:
                i = torch.randint(0, self.size, (1,)).item()
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def make_cyclegan_step(args, device, autocast):
    res, batch = args.resolution, args.batch
    nets = {name: (resnet_generator(1, args.ngf, args.blocks) if name.startswith("G") else patch_discriminator(1, args.ndf))
            for name in ("G_A", "G_B", "D_A", "D_B")}
    for net in nets.values():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
        net.to(device).train()
    g_a, g_b, d_a, d_b = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
    opt_g = torch.optim.Adam(list(g_a.parameters()) + list(g_b.parameters()), lr=2e-4, betas=(0.5, 0.999),
                             **optim_impl(args))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999),
                             **optim_impl(args))
    pool_a, pool_b = ImagePool(50), ImagePool(50)
    rows = max(64, 2 * batch)
    data_a = torch.rand(rows, 1, res, res) * 2 - 1
    data_b = torch.rand(rows, 1, res, res) * 2 - 1
    lambda_a = lambda_b = 10.0
    lambda_idt = 0.5

    def gan_loss(prediction, real):
        return F.mse_loss(prediction, torch.full_like(prediction, 1.0 if real else 0.0))

    def set_requires_grad(modules, flag):
        for module in modules:
            for p in module.parameters():
                p.requires_grad_(flag)

    def step():
        real_a = data_a[torch.randint(0, rows, (batch,))].to(device)
        real_b = data_b[torch.randint(0, rows, (batch,))].to(device)
        with autocast():
            fake_b = g_a(real_a)
            rec_a = g_b(fake_b)
            fake_a = g_b(real_b)
            rec_b = g_a(fake_a)
            # G update, discriminators frozen.
            set_requires_grad([d_a, d_b], False)
            idt_a = g_a(real_b)
            idt_b = g_b(real_a)
            loss_g = (gan_loss(d_a(fake_b), True) + gan_loss(d_b(fake_a), True)
                      + lambda_a * F.l1_loss(rec_a, real_a) + lambda_b * F.l1_loss(rec_b, real_b)
                      + lambda_idt * lambda_b * F.l1_loss(idt_a, real_b) + lambda_idt * lambda_a * F.l1_loss(idt_b, real_a))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # D update on pooled fakes.
        set_requires_grad([d_a, d_b], True)
        with autocast():
            pooled_b, pooled_a = pool_b.query(fake_b), pool_a.query(fake_a)
            loss_d_a = 0.5 * (gan_loss(d_a(real_b), True) + gan_loss(d_a(pooled_b), False))
            loss_d_b = 0.5 * (gan_loss(d_b(real_a), True) + gan_loss(d_b(pooled_a), False))
        opt_d.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        opt_d.step()
        values = [loss_g.item(), loss_d_a.item(), loss_d_b.item()]
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"non-finite loss: {values}")
        return values

    return step, {"G_A": count(g_a), "D_A": count(d_a)}


# --- driver -------------------------------------------------------------------------------------------------------

def count(module):
    return sum(p.numel() for p in module.parameters())


def optim_impl(args):
    if args.optim_impl == "foreach":
        return {"foreach": True}
    if args.optim_impl == "fused":
        return {"fused": True}
    return {}


def set_precision(precision):
    tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def parse_args():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    common.add_argument("--precision", choices=["f32", "tf32", "bf16"], default="tf32")
    common.add_argument("--steps", type=int, default=20, help="timed steps")
    common.add_argument("--warmup", type=int, default=5, help="untimed steps first (cuDNN autotuning, allocator)")
    common.add_argument("--batch", type=int, default=16)
    common.add_argument("--seed", type=int, default=2020)
    common.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU runs)")
    common.add_argument("--optim-impl", choices=["default", "foreach", "fused"], default="default",
                        help="torch.optim implementation (default: PyTorch's choice, foreach on CUDA)")
    common.add_argument("--no-cudnn-benchmark", action="store_true")
    common.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    gan = sub.add_parser("gan", parents=[common], help="one `thorax train gan` step: D, G, EMA")
    gan.add_argument("--resolution", type=int, default=64)
    gan.add_argument("--fmap-max", type=int, default=128)
    gan.add_argument("--fmap-base", type=float, default=8192.0)
    gan.add_argument("--latent-size", type=int, default=512)
    gan.add_argument("--lr", type=float, default=0.002)
    gan.add_argument("--ema-beta", type=float, default=0.999)
    gan.add_argument("--label-weight", type=float, default=1.0)
    gan.add_argument("--no-augment", action="store_true")
    gan.add_argument("--upscale", choices=["transposed", "subpixel"], default="transposed",
                     help="Conv0_up as conv_transpose2d (default) or as our four 2x2 phase kernels")
    clf = sub.add_parser("classifier", parents=[common], help="one `thorax train classifier` SGD step")
    clf.add_argument("--resolution", type=int, default=224)
    clf.add_argument("--growth", "--growth-rate", dest="growth", type=int, default=32)
    clf.add_argument("--bn-size", type=int, default=4)
    clf.add_argument("--num-init-features", type=int, default=64)
    clf.add_argument("--block-config", type=lambda s: [int(v) for v in s.split(",")], default=[6, 12, 24, 16])
    clf.add_argument("--lr", type=float, default=0.01)
    clf.add_argument("--max-shift-px", type=int, default=None, help="default: resolution / 16")
    clf.add_argument("--densenet", choices=["auto", "torchvision", "own"], default="auto")
    cg = sub.add_parser("cyclegan", parents=[common], help="one `thorax train cyclegan` step: G_A, G_B, then D_A, D_B")
    cg.add_argument("--resolution", type=int, default=128)
    cg.add_argument("--ngf", type=int, default=64)
    cg.add_argument("--ndf", type=int, default=64)
    cg.add_argument("--blocks", type=int, default=9)
    args = parser.parse_args()
    if args.workload == "cyclegan":
        pass
    elif args.workload == "gan":
        r = args.resolution
        if r < 8 or r & (r - 1):
            parser.error(f"--resolution {r} is not a power of two from 8 up")
        if args.batch < 2 or (args.batch > 3 and args.batch % MBSTD_GROUP):
            parser.error(f"--batch {args.batch} must be 2, 3 or a multiple of {MBSTD_GROUP} (minibatch stddev)")
    elif args.batch < 2:
        parser.error("--batch must be at least 2 (BatchNorm)")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    return args


def main():
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but torch sees no CUDA device")
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    set_precision(args.precision)
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    if args.precision == "bf16":
        def autocast():
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    else:
        def autocast():
            return torch.autocast(device_type=device.type, enabled=False)

    make = {"gan": make_gan_step, "classifier": make_classifier_step, "cyclegan": make_cyclegan_step}[args.workload]
    step, params = make(args, device, autocast)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times_ms, last = [], None
    for _ in range(args.steps):
        sync()
        start = time.perf_counter()
        last = step()
        sync()
        times_ms.append((time.perf_counter() - start) * 1e3)
    median_ms, min_ms = statistics.median(times_ms), min(times_ms)
    config = {k: v for k, v in vars(args).items() if k not in ("json", "workload")}
    result = {
        "workload": args.workload,
        "config": config,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "precision": args.precision,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "params": params,
        "step_ms": [round(t, 3) for t in times_ms],
        "median_ms": median_ms,
        "min_ms": min_ms,
        "images_per_s": args.batch * 1e3 / median_ms,
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "last_losses": last,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.workload} on {result['device_name'] or args.device} ({args.device}), torch {torch.__version__}, "
          f"precision {args.precision}, cudnn.benchmark {torch.backends.cudnn.benchmark}")
    shown = {k: v for k, v in config.items() if k not in ("device", "precision", "steps", "warmup")}
    print("config: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    print("params: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in params.items()))
    print(f"{args.steps} steps after {args.warmup} warm-up: median {median_ms:.2f} ms, min {min_ms:.2f} ms, "
          f"{result['images_per_s']:.1f} images/s (batch {args.batch})")
    if result["peak_memory_mib"] is not None:
        print(f"peak CUDA memory during the timed steps: {result['peak_memory_mib']:.0f} MiB")


if __name__ == "__main__":
    main()

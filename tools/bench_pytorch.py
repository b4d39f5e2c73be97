#!/usr/bin/env python3
"""The `thorax bench` workloads in PyTorch, for the side-by-side in BENCHMARKS.md (not run in CI).

Same architectures, random weights (speed does not depend on them), batch and timing protocol as
`thorax bench`: one warm-up run, then --iters timed runs; median and minimum. torch.set_num_threads(--threads,
default 2), torch.no_grad(), model.eval(), float32.

On a GPU (--device cuda) each run ends with torch.cuda.synchronize(). --precision f32 turns TF32 off for both
matmuls and cuDNN convolutions (PyTorch allows it for cuDNN by default), tf32 turns both on, bf16 runs under
torch.autocast(bfloat16). With --thorax the same precision is asked of thorax (--tf32; it has no bf16 path).

Workloads:
  generator   ProGAN G_paper at 256 px (latent 512 + 14 labels, fmap_max 512), Conv0_up as the original's
              conv2d_transpose 4x4 stride 2 (--upscale transposed, default) or as nearest x2 + 3x3 conv
              (--upscale nearest, the variant timed in research/rust-stack.md section 4)
  classifier  torchvision densenet121(num_classes=14) + sigmoid on 3x224x224
  cyclegan    junyanz ResnetGenerator resnet_9blocks, ngf 64, instance norm, 1 channel, 256x256
  msssim      pytorch_msssim.ms_ssim of two 256x256 gray images, data_range 255

With --thorax BIN the script interleaves: each round runs `BIN bench W --json` (and, with --with-candle, the same
with `--conv candle`), then the PyTorch timing, so both see the same load on a shared machine; it reports every
round and the median over rounds of each median, with the ratio ours / PyTorch.

Usage:
  /work/pyenv/bin/python tools/bench_pytorch.py all --iters 5
  /work/pyenv/bin/python tools/bench_pytorch.py generator classifier --thorax target/release/thorax \
      --rounds 3 --iters 5 --with-candle --json
"""

import argparse
import json
import math
import platform
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WORKLOADS = ["generator", "classifier", "cyclegan", "msssim"]


# --- ProGAN G_paper (lod 0) ------------------------------------------------------------------------------------

def pixel_norm(x, eps=1e-8):
    return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + eps)


def act_norm(x, bias):
    x = x + bias.view(1, -1, 1, 1)
    return pixel_norm(F.leaky_relu(x, 0.2))


class ProganGenerator(nn.Module):
    """G_paper at lod 0 with the runtime weight scale folded into the weights, as thorax stores them."""

    def __init__(self, resolution=256, latent=512, labels=14, fmap_base=8192, fmap_max=512, upscale="transposed"):
        super().__init__()
        nf = lambda stage: min(int(fmap_base / 2.0 ** stage), fmap_max)
        self.upscale = upscale
        self.c4 = nf(1)
        combo = latent + labels
        g = torch.Generator().manual_seed(0)
        w = lambda *shape, fan_in, gain=math.sqrt(2): nn.Parameter(
            torch.randn(*shape, generator=g) * (gain / math.sqrt(fan_in)))
        self.dense_w = w(combo, self.c4 * 16, fan_in=combo, gain=math.sqrt(2) / 4)
        self.dense_b = nn.Parameter(torch.zeros(self.c4))
        self.conv4_w = w(self.c4, self.c4, 3, 3, fan_in=9 * self.c4)
        self.conv4_b = nn.Parameter(torch.zeros(self.c4))
        self.up_w, self.up_b, self.conv_w, self.conv_b = (nn.ParameterList() for _ in range(4))
        maps_in = self.c4
        for res_log2 in range(3, int(math.log2(resolution)) + 1):
            maps_out = nf(res_log2 - 1)
            k3 = torch.randn(maps_out, maps_in, 3, 3, generator=g) * (math.sqrt(2) / math.sqrt(9 * maps_in))
            if upscale == "transposed":
                # The original's fused upscale: the 3x3 kernel padded to 5x5, its four 4x4 windows summed, used by
                # conv2d_transpose stride 2; torch wants [in, out, 4, 4].
                p = F.pad(k3, (1, 1, 1, 1))
                k4 = p[:, :, 1:, 1:] + p[:, :, :-1, 1:] + p[:, :, 1:, :-1] + p[:, :, :-1, :-1]
                self.up_w.append(nn.Parameter(k4.transpose(0, 1).contiguous()))
            else:
                self.up_w.append(nn.Parameter(k3))
            self.up_b.append(nn.Parameter(torch.zeros(maps_out)))
            self.conv_w.append(w(maps_out, maps_out, 3, 3, fan_in=9 * maps_out))
            self.conv_b.append(nn.Parameter(torch.zeros(maps_out)))
            maps_in = maps_out
        self.rgb_w = w(1, maps_in, 1, 1, fan_in=maps_in, gain=1.0)
        self.rgb_b = nn.Parameter(torch.zeros(1))

    def forward(self, latents, labels):
        x = pixel_norm(torch.cat([latents, labels], dim=1))
        x = (x @ self.dense_w).view(-1, self.c4, 4, 4)
        x = act_norm(x, self.dense_b)
        x = act_norm(F.conv2d(x, self.conv4_w, padding=1), self.conv4_b)
        for up_w, up_b, conv_w, conv_b in zip(self.up_w, self.up_b, self.conv_w, self.conv_b):
            if self.upscale == "transposed":
                x = F.conv_transpose2d(x, up_w, stride=2, padding=1)
            else:
                x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), up_w, padding=1)
            x = act_norm(x, up_b)
            x = act_norm(F.conv2d(x, conv_w, padding=1), conv_b)
        return F.conv2d(x, self.rgb_w, self.rgb_b)


# --- CycleGAN ResnetGenerator (junyanz) -----------------------------------------------------------------------

class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(input_nc=1, output_nc=1, ngf=64, n_blocks=9):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        mult = 2 ** i
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * mult * 2),
                   nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        mult = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                   nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return nn.Sequential(*layers)


# --- workloads -------------------------------------------------------------------------------------------------

def make_workload(name, batch, upscale, device="cpu"):
    """A zero-argument function running one batch on `device`, and a description."""
    model, inputs, description = make_model(name, batch, upscale)
    if model is None:
        return inputs, description
    model = model.to(device)
    inputs = [x.to(device) for x in inputs]
    if name == "classifier":
        return lambda: torch.sigmoid(model(*inputs)), description
    return lambda: model(*inputs), description


def make_model(name, batch, upscale):
    """(model, inputs, description), or (None, run, description) for workloads that are not one module."""
    torch.manual_seed(0)
    if name == "generator":
        model = ProganGenerator(upscale=upscale).eval()
        latents, labels = torch.randn(batch, 512), torch.zeros(batch, 14)
        return model, [latents, labels], f"ProGAN G_paper 256 px, fmap_max 512, upscale {upscale}"
    if name == "classifier":
        import torchvision
        model = torchvision.models.densenet121(num_classes=14).eval()
        x = torch.rand(batch, 3, 224, 224) * 2 - 1
        return model, [x], "torchvision densenet121 3x224x224, 14 classes"
    if name == "cyclegan":
        model = resnet_generator().eval()
        x = torch.rand(batch, 1, 256, 256) * 2 - 1
        return model, [x], "junyanz resnet_9blocks ngf 64, 1 channel, 256x256"
    if name == "msssim":
        from pytorch_msssim import ms_ssim
        yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
        base = 127.5 + 60 * torch.sin(xx / 17) * torch.cos(yy / 23)
        a = (base + 10 * torch.randn(256, 256)).clamp(0, 255).view(1, 1, 256, 256)
        b = (base + 10 * torch.randn(256, 256)).clamp(0, 255).view(1, 1, 256, 256)

        def pairs():
            for _ in range(batch):
                ms_ssim(a, b, data_range=255, size_average=True)
        return None, pairs, "pytorch_msssim.ms_ssim 256x256 gray, data_range 255"
    raise ValueError(f"unknown workload {name}")


def set_precision(precision):
    """TF32 on or off for matmuls and cuDNN convolutions; bf16 is autocast in time_runs."""
    allow = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow


def time_runs(run, iters, device="cpu", precision="f32"):
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    autocast = torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                              enabled=precision == "bf16")
    with torch.no_grad(), autocast:
        run()
        sync()
        times_ms = []
        for _ in range(iters):
            start = time.perf_counter()
            run()
            sync()
            times_ms.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times_ms), min(times_ms)


def thorax_run(binary, workload, batch, iters, conv, device="cpu", precision="f32"):
    command = [binary, "bench", workload, "--batch", str(batch), "--iters", str(iters), "--conv", conv, "--json",
               "--device", "cuda" if device.startswith("cuda") else "cpu"]
    if precision == "tf32":
        command.append("--tf32")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output)["results"][0]
    return result["median_ms"], result["min_ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", default=["all"], choices=WORKLOADS + ["all"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--upscale", choices=["transposed", "nearest"], default="transposed")
    parser.add_argument("--thorax", help="thorax binary to interleave with")
    parser.add_argument("--with-candle", action="store_true", help="also time thorax with --conv candle")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", choices=["f32", "tf32", "bf16"], default="f32")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    set_precision(args.precision)
    torch.set_num_threads(args.threads)
    workloads = WORKLOADS if "all" in args.workloads else args.workloads
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor() or
              platform.machine(), "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
              "precision": args.precision, "batch": args.batch, "iters": args.iters, "results": []}
    for name in workloads:
        if name == "msssim" and args.device != "cpu":
            continue  # pytorch-msssim on the CPU only, like thorax
        run, description = make_workload(name, args.batch, args.upscale, args.device)
        rounds = []
        for round_index in range(args.rounds):
            entry = {}
            if args.thorax:
                entry["ours_median_ms"], entry["ours_min_ms"] = thorax_run(args.thorax, name, args.batch, args.iters,
                                                                           "fast", args.device, args.precision)
                if args.with_candle:
                    entry["candle_median_ms"], entry["candle_min_ms"] = thorax_run(
                        args.thorax, name, args.batch, args.iters, "candle", args.device, args.precision)
            entry["torch_median_ms"], entry["torch_min_ms"] = time_runs(run, args.iters, args.device, args.precision)
            if args.thorax:
                entry["ratio"] = entry["ours_median_ms"] / entry["torch_median_ms"]
            rounds.append(entry)
            if not args.json:
                print(f"{name} round {round_index + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in entry.items()),
                      flush=True)
        summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        summary["images_per_s_torch"] = args.batch * 1e3 / summary["torch_median_ms"]
        report["results"].append({"workload": name, "model": description, "rounds": rounds, "median": summary})
        if not args.json:
            print(f"{name} median over {args.rounds} round(s): " +
                  ", ".join(f"{k} {v:.3f}" for k, v in summary.items()), flush=True)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

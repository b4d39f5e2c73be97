#!/usr/bin/env python3
"""One-off export of a PyTorch checkpoint that `thorax convert` cannot read to a plain zip-format state_dict.

`thorax convert densenet|cyclegan` reads torch.save zip files and the legacy format directly, including
reproduce-chexnet's pickled whole-module checkpoint. Use this script only when it refuses a file (very old tar
archives, pickles written with protocol 4 or 5, unusual module classes):

    python tools/export_checkpoint.py CHECKPOINT OUT.pth [--key model]
    thorax convert densenet OUT.pth densenet.safetensors

Loading a pickled module runs its Python classes, so torchvision must be importable, and it executes code from the
file: only export checkpoints you trust. Writes `torch.save(state_dict)` with plain tensors (no module classes).
"""

import argparse
import sys

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--key", help="dict key holding the model or state_dict (default: model, then state_dict)")
    args = parser.parse_args()

    obj = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        keys = [args.key] if args.key else ["model", "state_dict", "model_state_dict", "net", "netG"]
        found = next((k for k in keys if k in obj), None)
        if found is None:
            sys.exit(f"{args.checkpoint}: none of the keys {keys} found; top-level keys are {list(obj)}")
        obj = obj[found]
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        sys.exit(f"{args.checkpoint}: expected a module or a state_dict, found {type(obj).__name__}")
    state = {}
    for name, value in obj.items():
        if not torch.is_tensor(value):
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        state[name] = value.detach().cpu().contiguous().clone()
    torch.save(state, args.out)
    print(f"wrote {len(state)} tensors to {args.out}")


if __name__ == "__main__":
    main()

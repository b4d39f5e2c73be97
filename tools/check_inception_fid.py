#!/usr/bin/env python3
"""FID of two image folders by pytorch-fid itself, with a given weights file, to compare with
`thorax metrics fid --features inception --inception-weights FILE`.

pytorch-fid downloads its weights from GitHub; this points its loader at a local .pth instead (the published
pt_inception-2015-12-05-6726825d.pth, or the formula weights `--write-formula-weights` saves, ~87 MB, for an
end-to-end check without the real file). Everything else is pytorch-fid's `calculate_fid_given_paths` (ToTensor of
PIL `convert('RGB')`, resize to 299, 2048-d pool3, scipy sqrtm).

    PYTHONPATH=/work/fid-pkgs /work/pyenv/bin/python tools/check_inception_fid.py --weights W.pth REAL_DIR FAKE_DIR
    PYTHONPATH=/work/fid-pkgs:tools /work/pyenv/bin/python tools/check_inception_fid.py --write-formula-weights W.pth
"""

import argparse
import json

import torch
import pytorch_fid.inception as fid_inception
from pytorch_fid.fid_score import calculate_fid_given_paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="state_dict .pth to load (or to write)")
    parser.add_argument("--write-formula-weights", action="store_true", help="save the fixture's formula weights")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("folders", nargs="*")
    args = parser.parse_args()
    if args.write_formula_weights:
        from make_inception_fixture import formula_state_dict

        torch.save(formula_state_dict(), args.weights)
        print(f"wrote {args.weights}")
        return
    if len(args.folders) != 2:
        parser.error("give REAL_DIR and FAKE_DIR")
    state = torch.load(args.weights, map_location="cpu")
    fid_inception.load_state_dict_from_url = lambda *a, **k: state
    torch.set_num_threads(2)
    value = calculate_fid_given_paths(args.folders, args.batch_size, "cpu", 2048, num_workers=0)
    print(json.dumps({"metric": "FID", "value": float(value), "implementation": "pytorch-fid"}))


if __name__ == "__main__":
    main()

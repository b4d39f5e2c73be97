"""Measures a trained CycleGAN pair for its model cards: does translating move images towards the other domain?

For each direction X -> Y, on the images `thorax train cyclegan --held-out-list` kept out of training:
1. translate the held-out X images with the generator (`thorax translate`, at the training scale);
2. FD-DenseNet (Frechet distance on the classifier's pooled features, bootstrap CI) of the translations against the
   held-out real Y images ("translated"), next to the same distance for the untranslated X images ("untranslated",
   the distance the generator has to close) and for an equal-sized sample of Y training images ("floor", what a
   perfect translation would reach at this sample size).
A generator that learned the style lands between the untranslated distance and the floor; one that made things
worse lands above the untranslated distance.

Usage (standard library only; every measurement is done by the thorax binary):
    python tools/evaluate_cyclegan.py --thorax target/release/thorax --a2b G_A.safetensors --b2a G_B.safetensors \
        --held-out held-out.csv --domain-a DIR [DIR ...] --domain-a-prefix nih --domain-b DIR --domain-b-prefix ker_ \
        --work DIR [--classifier C.safetensors] [--add-to-cards]
"""

import argparse
import csv
import json
import os
import random
import shutil
import subprocess


def run_json(command):
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def fd_json(command):
    """`thorax metrics fid --json`, with the folders named by their names in the work folder (not local paths)."""
    result = run_json(command)
    for key in ("real", "fake"):
        result[key] = os.path.basename(result[key])
    return result


def link_files(files, folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for path in files:
        os.symlink(os.path.abspath(path), os.path.join(folder, os.path.basename(path)))


def domain_files(folders, prefix):
    extensions = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm")
    return [
        os.path.join(folder, name)
        for folder in folders
        for name in sorted(os.listdir(folder))
        if name.startswith(prefix) and name.lower().endswith(extensions)
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--thorax", required=True)
    parser.add_argument("--a2b", required=True, help="G_A, the A -> B generator")
    parser.add_argument("--b2a", required=True, help="G_B, the B -> A generator")
    parser.add_argument("--held-out", required=True, help="CSV domain,file from `thorax train cyclegan`")
    parser.add_argument("--domain-a", nargs="+", required=True)
    parser.add_argument("--domain-a-prefix", default="")
    parser.add_argument("--domain-b", nargs="+", required=True)
    parser.add_argument("--domain-b-prefix", default="")
    parser.add_argument("--classifier", help="feature network for the FD (default: the embedded classifier)")
    parser.add_argument("--work", required=True)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--scale", choices=["training", "native"], default="training",
                        help="the size the generators see the images at (thorax translate --scale)")
    parser.add_argument("--add-to-cards", action="store_true", help="write the result into both generators' cards")
    args = parser.parse_args()

    card = run_json([args.thorax, "card", args.a2b, "--json"])
    name_a, name_b = card["labels"]
    held_out = {name_a: [], name_b: []}
    with open(args.held_out) as f:
        for row in csv.DictReader(f):
            held_out[row["domain"]].append(row["file"])
    held_out_names = {os.path.basename(path) for paths in held_out.values() for path in paths}
    training = {
        name_a: [p for p in domain_files(args.domain_a, args.domain_a_prefix) if os.path.basename(p) not in held_out_names],
        name_b: [p for p in domain_files(args.domain_b, args.domain_b_prefix) if os.path.basename(p) not in held_out_names],
    }

    rng = random.Random(args.seed)
    folders = {}
    for name in (name_a, name_b):
        folders[name] = os.path.join(args.work, f"held-out-{name}")
        link_files(held_out[name], folders[name])
        folders[name + "-training"] = os.path.join(args.work, f"training-sample-{name}")
        link_files(rng.sample(training[name], len(held_out[name])), folders[name + "-training"])

    fd_command = [args.thorax, "metrics", "fid", "--bootstrap", str(args.bootstrap), "--seed", str(args.seed),
                  "--device", "cpu", "--json"]
    if args.classifier:
        fd_command += ["--classifier", args.classifier]
    untranslated = fd_json(fd_command + ["--real", folders[name_b], "--fake", folders[name_a]])
    result = {}
    for source, target, model, direction in ((name_a, name_b, args.a2b, "a2b"), (name_b, name_a, args.b2a, "b2a")):
        translated_dir = os.path.join(args.work, f"translated-{source}-to-{target}")
        shutil.rmtree(translated_dir, ignore_errors=True)
        sources = sorted(os.path.join(folders[source], name) for name in os.listdir(folders[source]))
        subprocess.run([args.thorax, "translate", "--model", model, "--direction", direction, "--scale", args.scale,
                        "--device", "cpu", "--out", translated_dir] + sources, check=True, capture_output=True)
        result[f"{source}->{target}"] = {
            "translated": fd_json(fd_command + ["--real", folders[target], "--fake", translated_dir]),
            "untranslated": untranslated,
            "floor": fd_json(fd_command + ["--real", folders[target], "--fake", folders[target + "-training"]]),
        }

    metrics = {
        "fd_densenet_domain": result,
        "fd_densenet_domain_evaluation": (
            f"FD-DenseNet of the held-out images of each domain ({len(held_out[name_a])} {name_a}, "
            f"{len(held_out[name_b])} {name_b}) translated at the {args.scale} scale, against the held-out real images of "
            f"the target domain; untranslated: the source images themselves; floor: as many training images of the "
            f"target domain; classifier {os.path.basename(args.classifier) if args.classifier else 'embedded'}; "
            f"{args.bootstrap} bootstrap resamples, seed {args.seed}; tools/evaluate_cyclegan.py"
        ),
    }
    metrics_path = os.path.join(args.work, "cyclegan-metrics.json")
    with open(metrics_path, "w") as f:
        json.dump(metrics, f, indent=1)
    if args.add_to_cards:
        for model in (args.a2b, args.b2a):
            subprocess.run([args.thorax, "card", model, "--add-metrics", metrics_path], check=True, capture_output=True)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()

"""Measures a trained generator for its model card and writes the result into the card with `thorax card`.

1. Generates one image per held-out real row, replaying that row's labels (seeded latents).
2. FD-DenseNet (Frechet distance on the classifier's pooled features) of generated vs held-out real, with a
   bootstrap CI, next to the same distance for an equal-sized training-real subset vs held-out real (the floor a
   perfect generator of this data would reach at this sample size).
3. The memorisation audit: each generated image's nearest training image (cosine on centred classifier features),
   flagged when closer than the held-out real images' 99th percentile.

Usage (numpy only; every measurement is done by the thorax binary):
    python tools/evaluate_generator.py --thorax target/release/thorax --generator G.safetensors \
        --classifier C.safetensors --images DATA_DIR --train-csv train.csv --heldout-csv heldout.csv --work DIR
"""

import argparse
import csv
import json
import os
import random
import shutil
import subprocess

import numpy as np


def run_json(command):
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def copy_rows(rows, images, folder):
    os.makedirs(folder, exist_ok=True)
    for row in rows:
        shutil.copy(os.path.join(images, row["file"]), os.path.join(folder, os.path.basename(row["file"])))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--thorax", required=True)
    parser.add_argument("--generator", required=True)
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--train-csv", required=True)
    parser.add_argument("--heldout-csv", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()

    card = run_json([args.thorax, "card", args.generator, "--json"])
    labels = card["labels"]
    train_rows = list(csv.DictReader(open(args.train_csv)))
    heldout_rows = list(csv.DictReader(open(args.heldout_csv)))
    heldout_dir = os.path.join(args.work, "heldout")
    training_dir = os.path.join(args.work, "training")
    subset_dir = os.path.join(args.work, "training-subset")
    generated_dir = os.path.join(args.work, "generated")
    for folder in (heldout_dir, training_dir, subset_dir, generated_dir):
        shutil.rmtree(folder, ignore_errors=True)
    copy_rows(heldout_rows, args.images, heldout_dir)
    copy_rows(train_rows, args.images, training_dir)
    copy_rows(random.Random(args.seed).sample(train_rows, len(heldout_rows)), args.images, subset_dir)

    label_matrix = np.array([[float(row[name]) for name in labels] for row in heldout_rows], dtype=np.float32)
    labels_npy = os.path.join(args.work, "heldout-labels.npy")
    np.save(labels_npy, label_matrix)
    subprocess.run(
        [args.thorax, "generate", "--model", args.generator, "--labels-npy", labels_npy, "--seed", str(args.seed),
         "--out", generated_dir, "--device", "cpu"],
        check=True, capture_output=True)

    fd_command = [args.thorax, "metrics", "fid", "--classifier", args.classifier, "--bootstrap", str(args.bootstrap),
                  "--seed", str(args.seed), "--device", "cpu", "--json"]
    fd_generated = run_json(fd_command + ["--real", heldout_dir, "--fake", generated_dir])
    fd_real = run_json(fd_command + ["--real", heldout_dir, "--fake", subset_dir])
    audit = run_json([args.thorax, "audit", "--generated", generated_dir, "--training", training_dir,
                      "--heldout", heldout_dir, "--classifier", args.classifier, "--device", "cpu", "--json"])

    audit_summary = {key: value for key, value in audit.items() if not isinstance(value, list)}
    metrics = {
        "fd_densenet_vs_heldout": fd_generated,
        "fd_densenet_real_train_subset_vs_heldout": fd_real,
        "memorisation_audit": audit_summary,
        "evaluation": (
            f"{len(heldout_rows)} generated images (labels of the held-out rows, latents seed {args.seed}) against "
            f"{len(heldout_rows)} held-out real images of patients not in training; features and audit embedding from "
            f"classifier {os.path.basename(args.classifier)}; tools/evaluate_generator.py"
        ),
    }
    metrics_path = os.path.join(args.work, "generator-metrics.json")
    with open(metrics_path, "w") as f:
        json.dump(metrics, f, indent=1)
    with open(os.path.join(args.work, "audit-full.json"), "w") as f:
        json.dump(audit, f, indent=1)
    subprocess.run([args.thorax, "card", args.generator, "--add-metrics", metrics_path], check=True)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()

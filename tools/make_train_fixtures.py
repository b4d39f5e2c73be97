"""Makes tests/fixtures/train/: 16 real radiographs from shared/data/cxr-train, resized to 32x32 grey PNGs, with a
labels CSV in our format (file, findings with |-joined NIH labels, labels_annotated). Run once:
    /work/pyenv/bin/python tools/make_train_fixtures.py
"""
import csv
import pathlib

from PIL import Image

SOURCE = pathlib.Path("/work/shared/data/cxr-train")
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "train"
NIH = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
       "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]

rows = list(csv.DictReader(open(SOURCE / "labels.csv")))
# 10 full-resolution NIH films with findings first, then 6 Kermany films (3 pneumonia, 3 normal).
nih = [r for r in rows if r["file"].startswith("nih_") and r["No_Finding"] == "0"][:10]
ker_p = [r for r in rows if r["file"].startswith("ker_") and r["Pneumonia"] == "1"][:3]
ker_n = [r for r in rows if r["file"].startswith("ker_") and r["No_Finding"] == "1"][:3]
OUT.mkdir(parents=True, exist_ok=True)
with open(OUT / "labels.csv", "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["file", "findings", "labels_annotated", "source_file"])
    for index, row in enumerate(nih + ker_p + ker_n):
        name = f"train_{index:02d}.png"
        image = Image.open(SOURCE / row["file"]).convert("L").resize((32, 32), Image.LANCZOS)
        image.save(OUT / name, optimize=True)
        findings = "|".join(label for label in NIH if row[label] == "1") or "No Finding"
        writer.writerow([name, findings, row["labels_annotated"], row["file"]])
print("wrote", OUT)

#!/usr/bin/env python3
"""Reference values and broken files for the DICOM tests (tests/dicom_*.rs). Run once; not needed at run time.

Environment: a venv with pydicom 3, numpy, pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pillow
    python3 -m venv /work/pydicom-venv && /work/pydicom-venv/bin/pip install pydicom numpy pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pillow

Steps (from the repository root):
  1. python tools/make_dicom_fixtures.py golden
       -> tests/fixtures/dicom/golden.json        pydicom's values for every file in tests/fixtures/dicom/real/
       -> tests/fixtures/dicom/broken/*.dcm       small broken files made from MR_small (truncated, wrong VR, ...)
       -> tests/fixtures/dicom/sc_source.png      a 8-bit 64x48 test pattern for the Secondary Capture round trip
  2. thorax dicom export-sc tests/fixtures/dicom/sc_source.png --out tests/fixtures/dicom/synthetic_sc.dcm \
         --model-sha256 <64 hex> --seed 1234 --labels "Cardiomegaly=1,Effusion=0"
  3. python tools/make_dicom_fixtures.py check-sc tests/fixtures/dicom/synthetic_sc.dcm
       -> tests/fixtures/dicom/synthetic_sc_pydicom.json   what pydicom reads back from our export
  4. (optional, not committed) python tools/make_dicom_fixtures.py check-deid OUT_DIR
       reads every de-identified file with pydicom and compares its pixels with the original's.
"""

import copy
import hashlib
import json
import pathlib
import sys

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "dicom"
if not DATA.exists():
    DATA = pathlib.Path("/work/shared/data/dicom")
OUT = ROOT / "tests" / "fixtures" / "dicom"

# Pixel positions (row, column) whose modality values the Rust reader must reproduce.
def probe_positions(rows, cols):
    return [(0, 0), (rows // 2, cols // 2), (rows // 3, (2 * cols) // 3), (rows - 1, cols - 1), ((3 * rows) // 4, cols // 5)]


def first_value(ds, keyword):
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    value = ds[keyword].value
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0]
    return float(value)


def golden():
    files = {}
    for path in sorted(DATA.glob("*.dcm")):
        ds = pydicom.dcmread(path, force=True)
        if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        stored = ds.pixel_array.astype(np.int64)
        modality = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
        rows, cols = stored.shape
        files[path.name] = {
            "rows": rows,
            "columns": cols,
            "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
            "photometric_interpretation": str(ds.PhotometricInterpretation),
            "stored_min": int(stored.min()),
            "stored_max": int(stored.max()),
            "stored_mean": float(stored.mean()),
            "modality_min": float(modality.min()),
            "modality_max": float(modality.max()),
            "modality_mean": float(modality.mean()),
            "window_center": first_value(ds, "WindowCenter"),
            "window_width": first_value(ds, "WindowWidth"),
            "probes": [
                {"row": r, "column": c, "modality_value": float(modality[r, c])}
                for r, c in probe_positions(rows, cols)
            ],
        }
    golden_doc = {
        "generator": f"tools/make_dicom_fixtures.py with pydicom {pydicom.__version__}, numpy {np.__version__}",
        "files": files,
    }
    (OUT / "golden.json").write_text(json.dumps(golden_doc, indent=1) + "\n")
    make_broken()
    make_sc_source()


def element_offset(raw, tag_group, tag_element):
    """Byte offset of an explicit-VR LE element header (group, element) in raw file bytes."""
    needle = tag_group.to_bytes(2, "little") + tag_element.to_bytes(2, "little")
    offset = raw.find(needle, 132)
    assert offset > 0, (hex(tag_group), hex(tag_element))
    return offset


def make_broken():
    broken = OUT / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    source = DATA / "mr_small_64.dcm"
    raw = source.read_bytes()
    ds = pydicom.dcmread(source)

    # Cut in the middle of the header (inside the data set, before Rows).
    (broken / "truncated_header.dcm").write_bytes(raw[:700])
    # Cut inside the pixel data: the header is complete, the pixels are not.
    pixel_offset = element_offset(raw, 0x7FE0, 0x0010)
    (broken / "truncated_pixels.dcm").write_bytes(raw[: pixel_offset + 12 + 3000])
    # Rows (0028,0010) with an unknown VR code "ZZ".
    rows = element_offset(raw, 0x0028, 0x0010)
    wrong = bytearray(raw)
    assert wrong[rows + 4 : rows + 6] == b"US"
    wrong[rows + 4 : rows + 6] = b"ZZ"
    (broken / "wrong_vr_unknown_code.dcm").write_bytes(bytes(wrong))
    # Rows (0028,0010) declared as text (SH) whose value "@\0" is no number.
    wrong = bytearray(raw)
    wrong[rows + 4 : rows + 6] = b"SH"
    (broken / "wrong_vr_rows_as_text.dcm").write_bytes(bytes(wrong))
    # No Pixel Data element at all.
    no_pixels = copy.deepcopy(ds)
    del no_pixels.PixelData
    no_pixels.save_as(broken / "missing_pixel_data.dcm", enforce_file_format=True)
    # Bits Stored larger than Bits Allocated.
    bad_bits = copy.deepcopy(ds)
    bad_bits.BitsStored = 20
    bad_bits.save_as(broken / "bits_stored_exceeds_allocated.dcm", enforce_file_format=True)
    # Not DICOM at all, and empty.
    (broken / "not_dicom.dcm").write_bytes(b"This is a text file, not a DICOM image.\n" * 4)
    (broken / "empty.dcm").write_bytes(b"")
    make_transfer_syntax_variants()
    index = {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(broken.glob("*.dcm"))}
    (broken / "INDEX.json").write_text(json.dumps({"made_from": source.name, "sha1": index}, indent=1) + "\n")


def make_transfer_syntax_variants():
    """MR_small and CT_small re-encoded as RLE Lossless and Deflated Explicit VR LE (pydicom's own encoders)."""
    variants = OUT / "transfer_syntaxes"
    variants.mkdir(parents=True, exist_ok=True)
    for name in ("mr_small_64.dcm", "ct_small_128.dcm"):
        ds = pydicom.dcmread(DATA / name)
        rle = copy.deepcopy(ds)
        rle.compress(pydicom.uid.RLELossless)
        rle.save_as(variants / name.replace(".dcm", "_rle.dcm"), enforce_file_format=True)
        deflated = copy.deepcopy(ds)
        deflated.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
        deflated.save_as(variants / name.replace(".dcm", "_deflated.dcm"), enforce_file_format=True)
        # JPEG 2000 lossless through pylibjpeg-openjpeg's encoder.
        j2k = copy.deepcopy(ds)
        j2k.compress(pydicom.uid.JPEG2000Lossless)
        j2k.save_as(variants / name.replace(".dcm", "_j2k.dcm"), enforce_file_format=True)
    # RLE fragments relabelled as JPEG-LS, for the error path of a codestream that is not what the syntax says.
    mislabelled = pydicom.dcmread(variants / "mr_small_64_rle.dcm")
    mislabelled.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLSLossless
    mislabelled.save_as(OUT / "broken" / "jpeg_ls_label_on_rle_data.dcm", enforce_file_format=True)
    # The JPEG-LS variants come from dcmtk's encoder: tools/make_dcmtk_codec_fixtures.sh.
    for path in sorted(p for p in variants.glob("*.dcm") if "_jpeg_ls" not in p.name):
        check = pydicom.dcmread(path)
        original = pydicom.dcmread(DATA / path.name.replace("_rle", "").replace("_deflated", "").replace("_j2k", ""))
        assert np.array_equal(check.pixel_array, original.pixel_array), path


def make_sc_source():
    rows, cols = 48, 64
    y, x = np.mgrid[0:rows, 0:cols]
    pattern = ((x * 4 + y * 2) % 256).astype(np.uint8)
    pattern[10:20, 10:20] = 255
    Image.fromarray(pattern, mode="L").save(OUT / "sc_source.png")


def check_sc(path):
    path = pathlib.Path(path)
    ds = pydicom.dcmread(path)  # no force: must be a valid part 10 file
    source = np.asarray(Image.open(OUT / "sc_source.png"))
    pixels = ds.pixel_array
    patient = {k: str(ds.get(k, "<absent>")) for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")}
    codes = ds.get("DeidentificationMethodCodeSequence")
    result = {
        "file": path.name,
        "pydicom": pydicom.__version__,
        "sop_class_uid": str(ds.SOPClassUID),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "media_storage_sop_instance_uid": str(ds.file_meta.MediaStorageSOPInstanceUID),
        "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        "image_type": list(ds.ImageType),
        "conversion_type": str(ds.ConversionType),
        "modality": str(ds.Modality),
        "series_description": str(ds.SeriesDescription),
        "patient_attributes": patient,
        "patient_identity_removed": str(ds.PatientIdentityRemoved),
        "deidentification_method": str(ds.get("DeidentificationMethod", "<absent>")),
        "deidentification_codes": [
            [str(c.CodeValue), str(c.CodingSchemeDesignator), str(c.CodeMeaning)] for c in (codes or [])
        ],
        "derivation_description": str(ds.DerivationDescription),
        "image_comments_json": json.loads(str(ds.ImageComments)),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "bits_allocated": int(ds.BitsAllocated),
        "pixels_equal_source_png": bool(pixels.shape == source.shape and np.array_equal(pixels, source)),
        "uids_are_2_25": all(str(u).startswith("2.25.") for u in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID)),
    }
    (OUT / "synthetic_sc_pydicom.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


def check_deid(out_dir):
    originals = {}
    for path in sorted(DATA.glob("*.dcm")):
        ds = pydicom.dcmread(path, force=True)
        if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        originals[(int(ds.Rows), int(ds.Columns))] = (path.name, ds.pixel_array)
    for path in sorted(pathlib.Path(out_dir).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        name, original = originals[(int(ds.Rows), int(ds.Columns))]
        same = np.array_equal(ds.pixel_array, original)
        print(f"{path.name}: from {name}, pixels identical: {same}, PatientIdentityRemoved={ds.PatientIdentityRemoved}, "
              f"PatientName={str(ds.get('PatientName', '<absent>'))!r}, private tags: {sum(1 for e in ds if e.tag.is_private)}")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "golden"
    if command == "golden":
        golden()
    elif command == "check-sc":
        check_sc(sys.argv[2])
    elif command == "check-deid":
        check_deid(sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")

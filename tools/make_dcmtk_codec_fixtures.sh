#!/usr/bin/env bash
# Makes the JPEG-LS and 12-bit JPEG test files in tests/fixtures/dicom/transfer_syntaxes with dcmtk's encoders (CharLS
# and IJG libjpeg 12-bit), with dcmtk's own decode of the 12-bit JPEG as a reference, and prints the SHA-256 of
# dcmtk's decode of each near-lossless JPEG-LS file (its Pixel Data bytes) for the test in dicom_read.rs.
# Needs dcmtk (apt-get install dcmtk); run from the repository root. Not run by CI: the outputs are committed.
set -euo pipefail
real=tests/fixtures/dicom/real
out=tests/fixtures/dicom/transfer_syntaxes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dcmcjpls "$real/mr_small_64.dcm" "$out/mr_small_64_jpeg_ls.dcm"
dcmcjpls "$real/ct_small_128.dcm" "$out/ct_small_128_jpeg_ls.dcm"
# Thresholds and RESET of our own, written to an LSE marker segment.
dcmcjpls +t1 5 +t2 11 +t3 40 +rs 32 "$real/ct_small_128.dcm" "$out/ct_small_128_jpeg_ls_presets.dcm"
# 1 KiB fragments and an empty Basic Offset Table.
dcmcjpls +fs 1 -ot "$real/mr_small_64.dcm" "$out/mr_small_64_jpeg_ls_fragments.dcm"
# Near-lossless: 8 bits with NEAR 2, and the real 10-bit chest film (no file meta, implicit VR) with NEAR 1.
dcmcjpls +en +md 2 tests/fixtures/dicom/synthetic_sc.dcm "$out/synthetic_sc_jpeg_ls_near2.dcm"
dcmcjpls +en +md 1 -f -ti "$real/chest_cr_pa_mono1_10bit_nometa.dcm" "$out/chest_cr_10bit_jpeg_ls_near1.dcm"
# Thresholds outside the standard's order (T1 = T2 = T3 = 1 with NEAR 1), which dcmtk writes when asked.
dcmcjpls +en +md 1 +t1 1 +t2 1 +t3 1 tests/fixtures/dicom/synthetic_sc.dcm "$out/synthetic_sc_jpeg_ls_near1_thresholds_1.dcm"

# 12-bit extended sequential JPEG (process 4) of the MR slice, and dcmtk's decode of it, deflated to stay small.
dcmcjpeg +ee +bt "$real/mr_small_64.dcm" "$out/mr_small_64_jpeg_12bit.dcm"
dcmdjpeg "$out/mr_small_64_jpeg_12bit.dcm" "$work/mr_12bit_decoded.dcm"
dcmconv +td "$work/mr_12bit_decoded.dcm" "$out/mr_small_64_jpeg_12bit_dcmtk_decoded.dcm"

for name in synthetic_sc_jpeg_ls_near2 chest_cr_10bit_jpeg_ls_near1 synthetic_sc_jpeg_ls_near1_thresholds_1; do
  dcmdjpls "$out/$name.dcm" "$work/$name.dcm"
  (cd "$work" && dcmdump -q +W "$work" "$name.dcm" >/dev/null)
  printf '%s.dcm %s\n' "$name" "$(sha256sum "$work"/*.raw | cut -d' ' -f1)"
  rm -f "$work"/*.raw
done

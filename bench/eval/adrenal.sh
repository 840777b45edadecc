#!/usr/bin/env bash
# 3D retrieval behind docs/evaluation.md: AdrenalMNIST3D (../shared/datasets/medmnist/adrenalmnist3d_64.npz) written
# as DICOM series (one study per volume, CT secondary-capture-like slices with geometry tags; labels per study),
# indexed with the default encoder, then `medsearch eval` of the test split against train + val at series level
# for each pooling (re-pooling needs no re-embedding), and at instance level (each slice votes alone) beside it.
# usage: bench/eval/adrenal.sh [WORK_DIR] [SLICES]   (default /tmp/medsearch-adrenal, 16 of the 64 slices written)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-/tmp/medsearch-adrenal}"
slices="${2:-16}"
dotnet build -c Release "$root/src/MedSearch.Cli" -v quiet -nologo >/dev/null
medsearch="$root/src/MedSearch.Cli/bin/Release/net10.0/linux-x64/medsearch"
if [ ! -f "$work/images/labels.csv" ]; then
  /usr/bin/python3 "$root/tests/python/volumes_to_dicom.py" "$root/../shared/datasets/medmnist/adrenalmnist3d_64.npz" "$work/images" --slices "$slices"
fi
"$medsearch" index "$work/images" --labels "$work/images/labels.csv" --data "$work/data" | tail -n 4
for pooling in mean median max meanmax; do
  "$medsearch" eval --data "$work/data" --level series --pooling "$pooling" --split split=test --k 1,5,10,25 --out "$work/report-series-$pooling"
done
"$medsearch" eval --data "$work/data" --level study --pooling mean --split split=test --k 1,5,10,25 --out "$work/report-study-mean"
"$medsearch" eval --data "$work/data" --level instance --split split=test --k 1,5,10,25 --out "$work/report-slices"

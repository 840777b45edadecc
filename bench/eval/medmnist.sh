#!/usr/bin/env bash
# The evaluation behind docs/evaluation.md: BreastMNIST and PneumoniaMNIST (../shared/datasets/medmnist) as PNG
# folders, indexed with the default encoder (train + val + test, the split kept as metadata), then
# `medsearch eval` of the test split against train + val at k = 1, 5, 10, 25, 50, 100: once at the default
# operating point (0.5, the published baselines' argmax accuracy) and once choosing sensitivity 0.95.
# usage: bench/eval/medmnist.sh [WORK_DIR]   (default /tmp/medsearch-medmnist; reports land in WORK_DIR/*/report-*)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-/tmp/medsearch-medmnist}"
datasets="$root/../shared/datasets/medmnist"
dotnet build -c Release "$root/src/MedSearch.Cli" -v quiet -nologo >/dev/null
medsearch="$root/src/MedSearch.Cli/bin/Release/net10.0/linux-x64/medsearch"

run() {
  local name="$1" labels="$2"
  local dir="$work/$name"
  if [ ! -f "$dir/images/labels.csv" ]; then
    /usr/bin/python3 "$root/bench/eval/medmnist_to_folder.py" "$datasets/$name.npz" "$dir/images" "$labels"
  fi
  "$medsearch" index "$dir/images" --labels "$dir/images/labels.csv" --data "$dir/data" | tail -n 3
  "$medsearch" eval --data "$dir/data" --split split=test --k 1,5,10,25,50,100 --out "$dir/report-default"
  "$medsearch" eval --data "$dir/data" --split split=test --k 1,5,10,25,50,100 --target-sensitivity 0.95 --out "$dir/report-sens95"
}

run breastmnist malignant,normal_benign
run pneumoniamnist normal,pneumonia

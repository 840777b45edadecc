#!/usr/bin/env bash
# Index and store benchmark of issue 5: MedSearch's HNSW index (F32, F16, I8, filtered search) side by side with
# Debian's python3-hnswlib on the same 100k x 512 clustered vectors and parameters (M 16, ef construction 256, the
# defaults), I8 graphs of other M and ef construction against search expansion (where the defaults come from),
# then the FASTER case store at 100k and 1M cases. Figures go to bench/RESULTS.md by hand; the report lands in
# bench/out/index/report.md. Takes about 30 minutes on 2 cores (plus ~1 minute to generate the vectors once);
# needs ~5 GB of disk under bench/out.
#   bench/index.sh [--threads N] [--skip-store]
set -euo pipefail
cd "$(dirname "$0")/.."

threads=$(nproc)
skip_store=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --skip-store) skip_store=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if ! /usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-hnswlib python3-numpy
fi

out=bench/out/index
mkdir -p "$out"
dotnet build bench/Index -c Release -nologo -v quiet > /dev/null
bench=(dotnet bench/Index/bin/Release/net10.0/linux-x64/MedSearch.Bench.Index.dll)

[[ -f "$out/truth.npy" ]] || "${bench[@]}" generate "$out"

report="$out/report.md"
{
  echo "# Index and store benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo
  # One after the other, never at once: both are timed on the same cores.
  /usr/bin/python3 bench/index_hnswlib.py "$out" --threads "$threads" > "$out/hnswlib.md"
  "${bench[@]}" index "$out" --threads "$threads"
  echo
  "${bench[@]}" sweep "$out" --threads "$threads" --graphs 16:128,16:256,16:384,24:128,32:128 --ef 24,32,40,48,64
  if [[ $skip_store == 0 ]]; then
    echo
    "${bench[@]}" store "$out" --count 100000 --threads "$threads" --header
    "${bench[@]}" store "$out" --count 1000000 --threads "$threads"
  fi
} | tee "$report"

#!/usr/bin/env bash
# Load benchmark of issue 6: the real gRPC server over 100k cases as large as DICOM cases (header facts, hashes,
# thumbnail), 16 and 64 concurrent clients for 30 s each, searching by vector and by image (the built-in ResNet18
# on the CPU). Server and clients share this machine's cores, so the figures are a lower bound on what a dedicated
# server does. Figures go to bench/RESULTS.md by hand; the report lands in bench/out/load/report.md. About 6 minutes
# on 2 cores the first time (storing the cases), about 5 after that.
#   bench/load.sh [--cases N] [--seconds S] [--clients 16,64]
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/load
mkdir -p "$out"
dotnet build bench/Load -c Release -nologo -v quiet > /dev/null
{
  echo "# Load benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo
  dotnet bench/Load/bin/Release/net10.0/linux-x64/MedSearch.Bench.Load.dll "$out" "$@"
} | tee "$out/report.md"

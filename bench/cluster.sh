#!/usr/bin/env bash
# Cluster benchmark of issue 9: one node vs 8 shards on 1 and on 3 Orleans silos in one process, over the same
# N clustered 512-d cases (HNSW search by vector, k = 10, C concurrent callers). Everything shares this machine's
# cores: the 3-silo figure is the cost of fanning out and merging, not the capacity of 3 machines. Figures go to
# bench/RESULTS.md by hand and feed docs/scaling.md; the report lands in bench/out/cluster/report.md.
#   bench/cluster.sh [--cases N] [--seconds S] [--clients C]
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/cluster
mkdir -p "$out"
dotnet build bench/Cluster -c Release -nologo -v quiet > /dev/null
{
  echo "# Cluster benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo
  dotnet bench/Cluster/bin/Release/net10.0/linux-x64/MedSearch.Bench.Cluster.dll "$out" "$@"
} | tee "$out/report.md"

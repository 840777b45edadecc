#!/usr/bin/env bash
# Encoder and ingest throughput on an NVIDIA GPU with the CPU figures beside it (bench/RESULTS.md, "Encoder and
# ingest"). Run as is on a Linux x64 machine with an NVIDIA driver, the CUDA 13 runtime and cuBLAS, cuDNN 9 and
# the .NET 10 SDK, from anywhere: it builds bench/Encoder, then measures the bare encoder and whole `index` jobs
# (MedMNIST PNGs and the DICOM corpus from ../shared) at batch 1..256 on CUDA and on the CPU.
#   GPU_BENCH_MEDMNIST  MedMNIST images per index run (default 5000)
#   GPU_BENCH_SECONDS   minimum seconds per bare-encoder measurement (default 3)
#   GPU_BENCH_DEVICE    the CUDA device (default cuda, i.e. cuda:0)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v dotnet >/dev/null || { echo "gpu.sh: the .NET 10 SDK (dotnet) is not on PATH" >&2; exit 1; }
command -v nvidia-smi >/dev/null || { echo "gpu.sh: nvidia-smi not found: no NVIDIA driver on this machine" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# ONNX Runtime's CUDA provider loads libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcudnn.so.9 by
# name: make a CUDA toolkit and pip's nvidia-* wheels visible when they are installed but not on the path.
extra=()
for dir in /usr/local/cuda/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib; do [ -d "$dir" ] && extra+=("$dir"); done
if command -v python3 >/dev/null; then
  while IFS= read -r dir; do [ -n "$dir" ] && extra+=("$dir"); done < <(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib"))):
        print(lib)
PY
)
fi
if [ ${#extra[@]} -gt 0 ]; then
  LD_LIBRARY_PATH="$(IFS=:; echo "${extra[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
# The cache and the listing are read whole, not piped into grep -q: grep -q stops at the first match, the writer
# can then die of SIGPIPE, and under pipefail that would fail the test and warn about a library that is there.
cache="$(ldconfig -p 2>/dev/null || true)"
for lib in libcudart.so.13 libcublas.so.13 libcudnn.so.9; do
  found=""
  [ -n "${LD_LIBRARY_PATH:-}" ] && found="$(find ${LD_LIBRARY_PATH//:/ } -maxdepth 1 -name "$lib*" 2>/dev/null || true)"
  if [[ "$cache" != *"$lib"* ]] && [ -z "$found" ]; then
    echo "gpu.sh: warning: $lib not found; ONNX Runtime's CUDA provider will fail to load (CUDA 13 and cuDNN 9 are needed)" >&2
  fi
done

dotnet build -c Release bench/Encoder -nologo -v quiet
# --device cuda (not auto): a broken CUDA setup must fail here, not quietly measure the CPU twice.
dotnet bench/Encoder/bin/Release/net10.0/linux-x64/medsearch-bench-encoder.dll \
  --device "${GPU_BENCH_DEVICE:-cuda}" --baseline cpu --batches 1,2,4,8,16,32,64,128,256 \
  --seconds "${GPU_BENCH_SECONDS:-3}" --medmnist "${GPU_BENCH_MEDMNIST:-5000}"

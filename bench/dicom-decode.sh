#!/usr/bin/env bash
# DICOM decode throughput (issue 3): MedSearch against pydicom 2.3 + GDCM, side by side on the same files.
#
# Usage: bench/dicom-decode.sh [ROUNDS]     (default 7, at least 5)
#
# Builds bench/DicomDecode in Release, lists the oracle's "ok" files that our decoders read (../shared/datasets/dicom),
# then starts both sides, lets each warm up once, and alternates timed rounds between them (the first side swaps every
# round; the idle side waits on its stdin), so that a noisy machine hurts both alike. Prints medians per transfer
# syntax group and writes them into bench/RESULTS.md under "## DICOM decode (issue 3)".
# Needs: the .NET 10 SDK; apt-get install python3-pydicom python3-gdcm python3-numpy libcharls2 libopenjp2-7
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-7}"
if ! [[ "$rounds" =~ ^[0-9]+$ ]] || (( rounds < 5 )); then
    echo "dicom-decode.sh: ROUNDS must be a number of at least 5, got '$rounds'" >&2
    exit 2
fi
dicom="$(cd "$root/.." && pwd)/shared/datasets/dicom"
if [[ ! -f "$dicom/oracle.tsv" ]]; then
    echo "dicom-decode.sh: $dicom/oracle.tsv is missing (../shared/datasets must sit next to the repository)" >&2
    exit 1
fi

dotnet build "$root/bench/DicomDecode/DicomDecode.csproj" -c Release --nologo -v quiet >&2
bin="$root/bench/DicomDecode/bin/Release/net10.0/linux-x64/DicomDecode.dll"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dotnet "$bin" list "$dicom/oracle.tsv" "$dicom" > "$work/files.tsv" 2> "$work/left-out.txt"

/usr/bin/python3 - "$root" "$bin" "$work" "$rounds" <<'PY'
import json, os, re, statistics, subprocess, sys
from collections import defaultdict

import pydicom

root, dll, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
load = " ".join(open("/proc/loadavg").read().split()[:3])
files = os.path.join(work, "files.tsv")
# The tiered JIT needs a few passes to reach optimised code; pydicom has nothing to warm beyond its imports.
WARMUPS = {"MedSearch": 3, "pydicom": 1}
commands = {
    "MedSearch": ["dotnet", dll, "serve", files, str(WARMUPS["MedSearch"])],
    "pydicom": ["/usr/bin/python3", os.path.join(root, "bench", "dicom_decode_pydicom.py"), files, str(WARMUPS["pydicom"])],
}

sides = {}
for side, command in commands.items():  # one after the other, so that the warm-ups do not compete
    log = open(os.path.join(work, side + ".log"), "w")  # GDCM's warnings about odd files go here
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline().strip()
    if line != "ready":
        log.close()
        sys.exit(f"{side} did not start ({line!r}): see {' '.join(command)}\n" + open(log.name).read()[-2000:])
    sides[side] = process

results = []  # (round, side, mode, group, files, frames, bytes, seconds)
for r in range(rounds):
    order = ["MedSearch", "pydicom"] if r % 2 == 0 else ["pydicom", "MedSearch"]
    for side in order:
        process = sides[side]
        process.stdin.write("round\n")
        process.stdin.flush()
        while (line := process.stdout.readline().strip()) != "end":
            if not line:
                sys.exit(f"{side} stopped in round {r + 1}: see {os.path.join(work, side + '.log')}")
            d = json.loads(line)
            results.append((r, side, d["mode"], d["group"], d["files"], d["frames"], d["bytes"], d["seconds"]))
for process in sides.values():
    process.stdin.close()
    process.wait()

groups = list(dict.fromkeys(g for _, _, _, g, *_ in results))
size = {g: (f, fr, b) for _, _, _, g, f, fr, b, _ in results}
seconds = defaultdict(list)  # (side, mode, group or "all") -> per-round seconds
for r in range(rounds):
    totals = defaultdict(float)
    for rr, side, mode, group, _, _, _, s in results:
        if rr == r:
            seconds[(side, mode, group)].append(s)
            totals[(side, mode)] += s
    for key, s in totals.items():
        seconds[key + ("all",)].append(s)
size["all"] = tuple(sum(size[g][i] for g in groups) for i in range(3))

def median(side, mode, group):
    return statistics.median(seconds[(side, mode, group)])

def rate(side, mode, group):
    s = median(side, mode, group)
    return size[group][2] / 1e6 / s, size[group][1] / s

rows = [
    "| group | files | frames | decoded MB | pydicom MB/s | ours MB/s | ratio | pydicom frames/s | ours frames/s | ours pipeline MB/s | ours pipeline frames/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for group in groups + ["all"]:
    f, fr, b = size[group]
    py_mb, py_fps = rate("pydicom", "raw", group)
    ours_mb, ours_fps = rate("MedSearch", "raw", group)
    pipe_mb, pipe_fps = rate("MedSearch", "pipeline", group)
    name = "**all**" if group == "all" else group
    rows.append(f"| {name} | {f} | {fr} | {b / 1e6:.1f} | {py_mb:.1f} | {ours_mb:.1f} | {ours_mb / py_mb:.2f}× | "
                f"{py_fps:.0f} | {ours_fps:.0f} | {pipe_mb:.1f} | {pipe_fps:.0f} |")
table = "\n".join(rows)
ratio = rate("MedSearch", "raw", "all")[0] / rate("pydicom", "raw", "all")[0]
# Each round's two passes ran back to back, so their ratio is paired against the load of that moment.
paired = statistics.median(p / o for o, p in zip(seconds[("MedSearch", "raw", "all")], seconds[("pydicom", "raw", "all")]))
spread = {side: (min(seconds[(side, "raw", "all")]), max(seconds[(side, "raw", "all")])) for side in sides}

def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

cpu = next((l.split(":", 1)[1].strip() for l in run("lscpu").splitlines() if l.startswith("Model name")), "unknown")
left_out = [l.strip() for l in open(os.path.join(work, "left-out.txt")) if l.strip()]
section = f"""## DICOM decode (issue 3)

Run by `bench/dicom-decode.sh {rounds}` on {run("date", "-u")}: {run("nproc")} cores, {cpu}; load average {load} at the start.

- One file at a time on both sides, the same {size["all"][0]} files: every oracle.tsv `ok` file whose every frame we decode,
  read into memory before timing. MB are decoded pixel bytes (10^6). pydicom's decoders are single-threaded; ours
  are too, except JPEG 2000, where OpenJPEG decodes a frame's code-blocks on every core (as the product does).
- **raw**: parse plus every frame to samples. Ours: DicomFile + FrameDecoders. pydicom {pydicom.__version__}:
  `dcmread(...).pixel_array`, with its GDCM handler for compressed data.
- **pipeline** (ours only): the whole `ImageReader.Read` to display-ready PixelImage, all frames.
- Medians of {rounds} interleaved rounds after warm-up ({WARMUPS["MedSearch"]} passes for .NET's tiered JIT,
  {WARMUPS["pydicom"]} for pydicom). Per-round totals ranged {spread["MedSearch"][0]:.2f}–{spread["MedSearch"][1]:.2f} s (ours)
  and {spread["pydicom"][0]:.2f}–{spread["pydicom"][1]:.2f} s (pydicom).

{table}

**Ratio, all files, raw decode: {ratio:.2f}× pydicom** (goal: ≥ 3×); the median of the per-round ratios is {paired:.2f}×.
""" + ("\nLeft out (we refuse them, so they are not timed on either side):\n" + "\n".join(f"- {l}" for l in left_out) + "\n" if left_out else "")

print(section)
results_md = os.path.join(root, "bench", "RESULTS.md")
if os.path.exists(results_md):
    text = open(results_md).read()
else:
    text = ("# Benchmark results\n\nFigures are medians from side-by-side runs on this shared 2-core machine: other work runs "
            "on it too, so absolute figures wander from run to run; ratios from interleaved rounds hold better. Each "
            "section below is written by the script it names; rerun that script to refresh it.\n")
pattern = re.compile(r"^## DICOM decode \(issue 3\)\n.*?(?=^## |\Z)", re.S | re.M)
text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
open(results_md, "w").write(text.rstrip("\n") + "\n")
print(f"written to {results_md}", file=sys.stderr)
PY

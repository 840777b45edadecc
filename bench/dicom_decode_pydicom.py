#!/usr/bin/python3
"""pydicom's side of dicom-decode.sh: timed passes of ds.pixel_array over the benchmark's file list.

Usage: /usr/bin/python3 dicom_decode_pydicom.py FILES_TSV WARMUPS
FILES_TSV lines are "path<TAB>group<TAB>decoded bytes<TAB>frames" (from `DicomDecode list`). Reads the files into
memory, makes WARMUPS untimed passes (imports, handler selection), prints "ready"; then for each "round" on stdin one
timed pass per group, printed as one JSON line each, then "end" -- the same protocol as `DicomDecode serve`, so that
dicom-decode.sh can alternate the two. Single-threaded, as pydicom is. Needs Debian's python3-pydicom, python3-gdcm,
python3-numpy: pydicom 2.3 picks its GDCM handler for every compressed syntax here, numpy for native data.
"""
import gc, io, json, sys, time
from collections import OrderedDict

import pydicom

files = []
with open(sys.argv[1]) as listing:
    for line in listing:
        path, group, size, frames = line.rstrip("\n").split("\t")
        with open(path, "rb") as f:
            files.append((path, group, int(size), int(frames), f.read()))
groups = OrderedDict()
for file in files:
    groups.setdefault(file[1], []).append(file)


def decode(data):
    return pydicom.dcmread(io.BytesIO(data), force=True).pixel_array


for _ in range(int(sys.argv[2])):
    for file in files:
        decode(file[4])
print("ready", flush=True)
for command in sys.stdin:
    if command.strip() != "round":
        break
    for group, members in groups.items():
        gc.collect()
        start = time.perf_counter()
        for file in members:
            decode(file[4])
        seconds = time.perf_counter() - start
        print(json.dumps({"side": "pydicom", "mode": "raw", "group": group, "files": len(members),
                          "frames": sum(m[3] for m in members), "bytes": sum(m[2] for m in members),
                          "seconds": seconds}), flush=True)
    print("end", flush=True)

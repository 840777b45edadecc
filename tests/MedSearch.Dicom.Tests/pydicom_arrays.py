#!/usr/bin/python3
"""pydicom's pixel_array for each DICOM file named on stdin, for SampleArray.FromPydicom.

Usage: /usr/bin/python3 pydicom_arrays.py OUTDIR < requests
Each request line is a path, optionally followed by a tab and "RGB": then the array is passed through pydicom's
own convert_color_space from the file's YBR photometric interpretation to RGB (pydicom 2.3 leaves JPEG YCbCr as
stored, the decoders under test convert it). For the N-th line writes OUTDIR/N.bin (the array's bytes, C order,
little endian) and prints one JSON line {"index": N, "dtype": ..., "shape": [...]} or {"index": N, "error": ...}.
The same reading as shared/tools/dicom_oracle.py (Debian's pydicom 2.3.1 with its GDCM handler), so without
"RGB" the bytes hash to oracle.tsv's md5.
Needs: apt-get install python3-pydicom python3-gdcm python3-numpy
"""
import json, os, sys

import numpy
import pydicom
from pydicom.pixel_data_handlers.util import convert_color_space

out = sys.argv[1]
for index, line in enumerate(sys.stdin):
    path, _, convert = line.rstrip("\n").partition("\t")
    try:
        ds = pydicom.dcmread(path, force=True)
        a = ds.pixel_array
        if convert == "RGB":
            a = convert_color_space(a, ds.PhotometricInterpretation, "RGB")
        a = numpy.ascontiguousarray(a)
    except Exception as e:  # noqa: BLE001 - any failure is reported to the test, which names the file
        print(json.dumps({"index": index, "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        continue
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    with open(os.path.join(out, "%d.bin" % index), "wb") as f:
        f.write(le.tobytes())
    print(json.dumps({"index": index, "dtype": str(le.dtype.newbyteorder("=")), "shape": list(a.shape)}), flush=True)

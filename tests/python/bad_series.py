#!/usr/bin/python3
"""Writes small synthetic DICOM series for MedSearch's bad-input tests, in the style of volumes_to_dicom.py
(CT secondary-capture-like, Explicit VR Little Endian, 16/12-bit MONOCHROME2, deterministic UIDs), plus a
manifest.json describing them. Run it with Debian's /usr/bin/python3 (pydicom 2.3.1 + numpy).

usage: bad_series.py OUT_DIR

One study with one 8-slice 32x32 series per case, in OUT_DIR/<case>/ with opaque, hash-derived file names (file
name order says nothing about slice order). Slice k (0-based) has an 8x8 square of value 1000 at rows and
columns 3k..3k+7 on a background of 10*k, so every slice differs and the slice order can be checked from pixels.
  good               a clean series.
  mixed_size         slice 3 is 48x48 (Rows/Columns 48, same square), the other seven 32x32.
  missing_positions  no ImagePositionPatient (and no SliceLocation) in any slice; InstanceNumber is present, so
                     order must come from InstanceNumber.
  duplicate_slice    slice 4 written twice under two file names: byte-identical files, same SOPInstanceUID.
  corrupt_slice      slice 5's file truncated in the middle of its pixel data (headers intact).
manifest.json: {"cases": {case: {study_instance_uid, series_instance_uid, directory, slices (distinct slices in
the series), files: [{file, instance_number, sop_instance_uid, z, rows, columns}] in true slice order (z is null
where no position was written), bad: [{file, why}]}}}.
"""
import json
import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from volumes_to_dicom import make_template, make_uid, set_slice, set_study, write  # noqa: E402

NAMESPACE = uuid.UUID("9e0c2b7d-41a6-4f0e-8c1b-3f7d2a9b6e15")
SLICES = 8
SIZE = 32


def pattern(k: int, size: int) -> np.ndarray:
    img = np.full((size, size), 10 * k, dtype=np.uint16)
    img[3 * k:3 * k + 8, 3 * k:3 * k + 8] = 1000
    return img


def file_name(case: str, tag: str) -> str:
    return uuid.uuid5(NAMESPACE, f"{case}/file/{tag}").hex[:16] + ".dcm"


def write_case(out: Path, case: str) -> dict:
    uid = lambda s: make_uid(f"bad_series/{case}/{s}", NAMESPACE)  # noqa: E731
    study_uid, series_uid = uid("study"), uid("series")
    case_dir = out / case
    case_dir.mkdir(parents=True, exist_ok=True)
    entries, bad = [], []
    for k in range(SLICES):
        size = 48 if case == "mixed_size" and k == 3 else SIZE
        ds = make_template(size, size, study_description=f"MedSearch bad-input test: {case}",
                           series_description=f"synthetic {SLICES}-slice series, {case}", body_part="ABDOMEN")
        set_study(ds, study_uid=study_uid, series_uid=series_uid, frame_uid=uid("frame"),
                  patient_id=f"BAD-{case}", study_id="1")
        positions = case != "missing_positions"
        set_slice(ds, sop_uid=uid(f"slice/{k}"), instance=k + 1, z=float(k) if positions else None,
                  pixels=pattern(k, size))
        if not positions:
            del ds.ImagePositionPatient
            del ds.SliceLocation
        name = file_name(case, str(k))
        path = case_dir / name
        write(ds, path)
        entry = {"file": name, "instance_number": k + 1, "sop_instance_uid": ds.SOPInstanceUID,
                 "z": float(k) if positions else None, "rows": size, "columns": size}
        entries.append(entry)
        if case == "mixed_size" and k == 3:
            bad.append({"file": name, "why": f"48x48 slice in a 32x32 series (instance {k + 1})"})
        if case == "missing_positions" and k == 0:
            bad.append({"file": None, "why": "no ImagePositionPatient or SliceLocation in any slice; "
                                             "order only from InstanceNumber"})
        if case == "duplicate_slice" and k == 4:
            copy = file_name(case, f"{k}-copy")
            (case_dir / copy).write_bytes(path.read_bytes())
            entries.append(dict(entry, file=copy))
            bad.append({"file": copy, "why": f"byte-identical copy of {name} (instance {k + 1}, same SOPInstanceUID)"})
        if case == "corrupt_slice" and k == 5:
            data = path.read_bytes()
            pixel_bytes = size * size * 2
            pixel_start = len(data) - pixel_bytes  # PixelData is the last element
            path.write_bytes(data[:pixel_start + pixel_bytes // 2])
            bad.append({"file": name, "why": f"truncated in the middle of its pixel data (instance {k + 1}: "
                                             f"{pixel_bytes // 2} of {pixel_bytes} pixel bytes kept)"})
    return {"study_instance_uid": study_uid, "series_instance_uid": series_uid, "directory": case,
            "slices": SLICES, "files": entries, "bad": bad}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    cases = {c: write_case(out, c)
             for c in ["good", "mixed_size", "missing_positions", "duplicate_slice", "corrupt_slice"]}
    (out / "manifest.json").write_text(json.dumps({"cases": cases}, indent=2) + "\n")
    print(f"{len(cases)} cases, {sum(len(c['files']) for c in cases.values())} files in {out}")


if __name__ == "__main__":
    main()

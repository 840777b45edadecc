#!/usr/bin/python3
"""Writes MedMNIST AdrenalMNIST3D volumes as real DICOM Part-10 series, one study per volume, for MedSearch's
study-level search tests and evaluation. Run it with Debian's /usr/bin/python3 (pydicom 2.3.1 + numpy).

usage: volumes_to_dicom.py NPZ OUT_DIR [--splits train,val,test] [--limit N] [--slices S]
                           [--shuffle-names SEED] [--labels-csv PATH]

The data (../shared/datasets/medmnist/adrenalmnist3d_64.npz, checked with numpy):
  train 1188 / val 98 / test 298 volumes, each 64x64x64 uint8; labels (N,1) uint8, 0 normal / 1 hyperplasia:
  train 929/259, val 76/22, test 229/69. The images are binary shape masks: the only values are 0 and 255
  (about 1.7% of voxels are 255); no volume is empty, but many axial slices are (the mask spans ~20-30 of 64).
  They are not CT intensities, so pixel values here are synthetic: 0 -> 0 and 255 -> 1000, window 500/1000.

Each file: "CT secondary-capture-like" - SOP Class Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7) with
Modality CT, Explicit VR Little Endian, 16-bit allocated / 12 stored unsigned MONOCHROME2, 64x64, axial
orientation [1,0,0,0,1,0]. A volume is volume[z, y, x]: axis 0 (MedMNIST's frame axis) is the slice axis.
MedMNIST3D publishes no physical voxel spacing (every volume is a cropped ROI resampled to 64^3), so pixel
spacing, slice thickness and slice spacing are all 1.0 mm, a stand-in, not a measurement. No demographics
exist in MedMNIST: PatientSex/PatientBirthDate are present but empty (type 2), PatientAge is omitted.

UIDs are deterministic ("2.25." + the decimal of a uuid5 of a fixed namespace and "<split>/<index>/..."), so
reruns give identical UIDs. Files go to OUT_DIR/<split>/<volume:04d>/<slice:03d>.dcm, or with --shuffle-names SEED
to OUT_DIR/<split>/<16 random hex>.dcm (one flat folder per split) so that neither grouping nor slice order can
be read from file names: both must come from the headers.

--slices S < 64 keeps S slices at an even integer step (64 // S), centred, so their ImagePositionPatient stays the
real voxel position and SpacingBetweenSlices is that step (SliceThickness stays 1.0).

Writes a labels CSV (default OUT_DIR/labels.csv): study_instance_uid,labels,split with labels normal|hyperplasia.
"""
import argparse
import csv
import random
import sys
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# Fixed namespace for this tool's UIDs; never change it, or every generated UID changes.
UID_NAMESPACE = uuid.UUID("5b1f6a52-0c3e-4d8e-9a55-6d2a1e0c7f31")
LABEL_NAMES = {0: "normal", 1: "hyperplasia"}
MASK_VALUE = 1000  # stored pixel value for mask voxels (input 255); background stays 0
STUDY_DATE = "20240101"
STUDY_TIME = "120000"


def make_uid(name: str, namespace: uuid.UUID = UID_NAMESPACE) -> str:
    return "2.25." + str(uuid.uuid5(namespace, name).int)


def slice_indices(depth: int, count: int) -> list:
    """count slices of depth at an even integer step, centred; all of them when count >= depth."""
    if count >= depth:
        return list(range(depth))
    step = depth // count
    first = (depth - ((count - 1) * step + 1)) // 2
    return [first + i * step for i in range(count)]


def make_template(rows: int, columns: int, *, study_description: str, series_description: str,
                  body_part: str = "ABDOMEN") -> Dataset:
    """A complete slice with everything that is the same for every slice; per-study/per-slice fields are set later."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = "1.2"  # replaced per slice
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDSEARCH_TEST"

    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = "1.2"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = STUDY_TIME
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.ConversionType = "WSD"
    ds.Manufacturer = "MedSearch test data"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = "Anonymous"
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = body_part
    ds.SliceThickness = "1.0"
    ds.SpacingBetweenSlices = "1.0"
    ds.StudyInstanceUID = "1.2"
    ds.SeriesInstanceUID = "1.2"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "P"]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = "1.2"
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [1, 1]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = MASK_VALUE // 2
    ds.WindowWidth = MASK_VALUE
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PixelData = b""
    return ds


def set_study(ds: Dataset, *, study_uid: str, series_uid: str, frame_uid: str, patient_id: str, study_id: str) -> None:
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PatientID = patient_id
    ds.StudyID = study_id


def set_slice(ds: Dataset, *, sop_uid: str, instance: int, z, pixels: np.ndarray) -> None:
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.InstanceNumber = instance
    if z is not None:
        ds.ImagePositionPatient = [0, 0, z]
        ds.SliceLocation = z
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()


def write(ds: Dataset, path: Path) -> None:
    dcmwrite(str(path), ds, write_like_original=False)


def iter_volumes(npz: Path, split: str, limit):
    """Streams (index, volume) from the npz member without decompressing the whole split into memory."""
    with zipfile.ZipFile(npz) as z, z.open(f"{split}_images.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran or dtype != np.uint8 or len(shape) != 4:
            sys.exit(f"{split}_images: unexpected array {shape} {dtype} fortran={fortran}")
        count = shape[0] if limit is None else min(limit, shape[0])
        size = int(np.prod(shape[1:]))
        for i in range(count):
            buf = f.read(size)
            if len(buf) != size:
                sys.exit(f"{split}_images: short read at volume {i}")
            yield i, np.frombuffer(buf, dtype=np.uint8).reshape(shape[1:])


def load_labels(npz: Path, split: str) -> np.ndarray:
    with np.load(npz) as d:
        return d[f"{split}_labels"].reshape(-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("npz", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--splits", default="train,val,test")
    p.add_argument("--limit", type=int, default=None, help="first N volumes of each split")
    p.add_argument("--slices", type=int, default=64, help="slices per volume (fewer: evenly spaced subset)")
    p.add_argument("--shuffle-names", type=int, default=None, metavar="SEED",
                   help="random opaque file names in one flat folder per split")
    p.add_argument("--labels-csv", type=Path, default=None)
    a = p.parse_args()
    if a.slices < 1 or (a.limit is not None and a.limit < 0):
        p.error("--slices must be >= 1 and --limit >= 0")

    start = time.monotonic()
    rng = random.Random(a.shuffle_names) if a.shuffle_names is not None else None
    used_names = set()
    template = make_template(64, 64, study_description="AdrenalMNIST3D adrenal shape mask (MedMNIST v2)",
                             series_description="AdrenalMNIST3D 64^3 binary mask, axial")
    rows, written, files = [], {}, 0
    for split in [s.strip() for s in a.splits.split(",") if s.strip()]:
        labels = load_labels(a.npz, split)
        split_dir = a.out_dir / split
        split_dir.mkdir(parents=True, exist_ok=True)
        written[split] = 0
        for i, vol in iter_volumes(a.npz, split, a.limit):
            key = f"adrenalmnist3d/{split}/{i}"
            study_uid = make_uid(key + "/study")
            set_study(template, study_uid=study_uid, series_uid=make_uid(key + "/series"),
                      frame_uid=make_uid(key + "/frame"), patient_id=f"ADRENAL-{split}-{i:04d}", study_id=f"{i}")
            idx = slice_indices(vol.shape[0], a.slices)
            template.SpacingBetweenSlices = str(float(idx[1] - idx[0]) if len(idx) > 1 else 1.0)
            if rng is None:
                vol_dir = split_dir / f"{i:04d}"
                vol_dir.mkdir(exist_ok=True)
            scaled = (vol > 0).astype(np.uint16) * MASK_VALUE
            for n, z in enumerate(idx, start=1):
                set_slice(template, sop_uid=make_uid(f"{key}/slice/{z}"), instance=n, z=float(z), pixels=scaled[z])
                if rng is None:
                    path = vol_dir / f"{z:03d}.dcm"
                else:
                    name = f"{rng.getrandbits(64):016x}"
                    while name in used_names:
                        name = f"{rng.getrandbits(64):016x}"
                    used_names.add(name)
                    path = split_dir / f"{name}.dcm"
                write(template, path)
                files += 1
            rows.append((study_uid, LABEL_NAMES[int(labels[i])], split))
            written[split] += 1

    labels_csv = a.labels_csv or a.out_dir / "labels.csv"
    labels_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(labels_csv, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["study_instance_uid", "labels", "split"])
        w.writerows(rows)
    per_split = " ".join(f"{s}={n}" for s, n in written.items())
    print(f"volumes {per_split}; files {files}; {time.monotonic() - start:.1f} s; labels {labels_csv}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes a MedMNIST .npz as a folder of 8-bit PNGs plus labels.csv (path, labels, split), the way a user hands
images to `medsearch index`. Usage: medmnist_to_folder.py NPZ OUT_DIR LABEL0,LABEL1[,...]"""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def png(pixels: np.ndarray) -> bytes:
    """Grey 8-bit PNG, no filtering: small images, so size does not matter, only exactness."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(np.uint8).tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    npz_path, out, names = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
    data = np.load(npz_path)
    rows = ["path,labels,split"]
    for split in ("train", "val", "test"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"].reshape(-1)
        (out / split).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            name = f"{split}/{i:05d}.png"
            (out / name).write_bytes(png(image))
            rows.append(f"{name},{names[int(label)]},{split}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()

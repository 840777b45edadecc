#!/usr/bin/python3
"""hnswlib on the same vectors, queries and ground truth as bench/Index (issue 5), for the side-by-side table.

Usage: index_hnswlib.py DIR [--threads N]
DIR holds vectors.npy, queries.npy and truth.npy from `MedSearch.Bench.Index generate`. Prints Markdown rows in
the column order of the MedSearch table. Needs Debian's python3-hnswlib and python3-numpy (run with /usr/bin/python3:
a pyenv or venv python does not see Debian's packages).
"""
import argparse
import os
import time

import hnswlib
import numpy as np

M = 16
EF_CONSTRUCTION = 256
EXPANSIONS = [16, 24, 32, 48, 64, 128, 256]
K = 10


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    vectors = np.load(os.path.join(args.directory, "vectors.npy"))
    queries = np.load(os.path.join(args.directory, "queries.npy"))
    truth = np.load(os.path.join(args.directory, "truth.npy"))
    count, dimensions = vectors.shape

    index = hnswlib.Index(space="cosine", dim=dimensions)
    index.init_index(max_elements=count, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    index.set_num_threads(args.threads)
    start = time.perf_counter()
    index.add_items(vectors, np.arange(count))
    build_seconds = time.perf_counter() - start
    path = os.path.join(args.directory, "index.hnswlib")
    index.save_index(path)
    file_mib = os.path.getsize(path) / 2**20
    os.remove(path)

    # One thread, all queries in one call: the fairest case for hnswlib (no Python overhead per query). The
    # machine is shared, so, as on the MedSearch side, the fastest of three passes counts.
    index.set_num_threads(1)
    for ef in EXPANSIONS:
        index.set_ef(ef)
        seconds = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            labels, _ = index.knn_query(queries, k=K)
            seconds = min(seconds, time.perf_counter() - start)
        hits = sum(len(set(labels[q]) & set(truth[q])) for q in range(len(queries)))
        recall = hits / (K * len(queries))
        print(f"| hnswlib 0.6 (Debian) | f32 | {ef} | {recall:.4f} | "
              f"{len(queries) / seconds:,.0f} | {build_seconds:.1f} | | {file_mib:.0f} |", flush=True)


if __name__ == "__main__":
    main()

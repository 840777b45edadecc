#!/usr/bin/python3
"""An independent check of `medsearch eval`: scikit-learn's KNeighborsClassifier on the embeddings `medsearch export`
wrote, with the same k and weighting, against eval's per-query exact-search scores; and sklearn's roc_auc_score
against eval's AUCs. Prints one JSON object with the largest differences found.

usage: sklearn_check.py EXPORT_DIR REPORT_DIR SPLIT_KEY SPLIT_VALUE WEIGHTING [TEMPERATURE]"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier


def weights_for(weighting: str, temperature: float):
    if weighting == "uniform":
        return "uniform"
    if weighting == "similarity":
        return lambda d: np.maximum(1.0 - d, 0.0)
    # Softmax: exp(similarity / T); sklearn normalises per query, so the constant shift we use cancels out.
    return lambda d: np.exp((1.0 - d - 1.0) / temperature)


def main() -> None:
    export, report_dir, key, value, weighting = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    temperature = float(sys.argv[6]) if len(sys.argv) > 6 else 0.1
    embeddings = np.load(export / "embeddings.npy").astype(np.float64)
    with open(export / "cases.csv", newline="") as f:
        cases = list(csv.DictReader(f))
    is_query = np.array([c.get(key) == value for c in cases])
    labels = [c["labels"] for c in cases]
    reference = np.where(~is_query)[0]
    queries = np.where(is_query)[0]
    keys = [cases[i]["key"] for i in queries]

    report = json.loads((report_dir / "report.json").read_text())
    scores = {}
    with open(report_dir / "scores.csv", newline="") as f:
        for row in csv.DictReader(f):
            scores[(row["query"], int(row["k"]), row["label"])] = (float(row["exact_score"]), float(row["score"]), int(row["truth"]))

    worst_score, worst_auc, compared = 0.0, 0.0, 0
    for by_k in report["by_k"]:
        k = by_k["k"]
        model = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights_for(weighting, temperature))
        model.fit(embeddings[reference], [labels[i] for i in reference])
        proba = model.predict_proba(embeddings[queries])
        for label_report in by_k["labels"]:
            label = label_report["label"]
            column = list(model.classes_).index(label)
            ours = np.array([scores[(q, k, label)][0] for q in keys])
            worst_score = max(worst_score, float(np.max(np.abs(ours - proba[:, column]))))
            compared += len(keys)
            truth = np.array([scores[(q, k, label)][2] for q in keys])
            approximate = np.array([scores[(q, k, label)][1] for q in keys])
            auc = label_report["overall"]["auc"]
            worst_auc = max(worst_auc, abs(roc_auc_score(truth, approximate) - auc),
                            abs(roc_auc_score(truth, ours) - label_report["exact_auc"]))
    print(json.dumps({"max_score_difference": worst_score, "max_auc_difference": worst_auc, "scores_compared": compared}))


if __name__ == "__main__":
    main()

"""Golden values for the reader-study statistics (src/study/stats.rs, analysis.rs).

Run once:  /work/pyenv/bin/python tools/make_study_fixtures.py
Writes tests/fixtures/study/stats_golden.json and tests/fixtures/study/reading.imrmc (+ reading_golden.json).
References: scipy.stats.binomtest, sklearn.metrics (roc_auc_score, accuracy_score, recall_score,
cohen_kappa_score), statsmodels fleiss_kappa, numpy.percentile.
"""

import json
import os

import numpy as np
import scipy
import sklearn
import statsmodels
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, cohen_kappa_score, recall_score, roc_auc_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "study")
rng = np.random.default_rng(20240611)


def binomial_cases():
    pairs = [(0, 1), (1, 1), (5, 10), (7, 10), (3, 10), (0, 20), (20, 20), (13, 27), (60, 100), (40, 100),
             (61, 100), (500, 1000), (530, 1000), (469, 1000), (101, 180), (1, 3)]
    out = [{"k": k, "n": n, "p": 0.5, "pvalue": binomtest(k, n, 0.5).pvalue} for k, n in pairs]
    for k, n, p in [(3, 10, 0.3), (7, 20, 0.25), (45, 60, 0.6)]:
        out.append({"k": k, "n": n, "p": p, "pvalue": binomtest(k, n, p).pvalue})
    return out


def roc_cases():
    cases = []
    for n, kind in [(10, "int5"), (40, "int10"), (57, "float"), (200, "int10"), (31, "slider")]:
        truth = rng.integers(0, 2, n)
        truth[0], truth[1] = 0, 1
        latent = truth * 1.0 + rng.normal(0, 1.0, n)
        if kind == "int5":
            scores = np.clip(np.round(latent * 1.5 + 3), 1, 5)
        elif kind == "int10":
            scores = np.clip(np.round(latent * 2 + 5.5), 1, 10)
        elif kind == "slider":
            scores = np.clip(np.round(latent * 40 + 100), 0, 201)
        else:
            scores = latent
        cases.append({"truth": truth.tolist(), "scores": scores.tolist(),
                      "auc": roc_auc_score(truth, scores)})
    return cases


def confusion_cases():
    cases = []
    for n in [12, 50, 99]:
        truth = rng.integers(0, 2, n)
        truth[0], truth[1] = 0, 1
        call = np.where(rng.random(n) < 0.7, truth, 1 - truth)
        cases.append({"truth": truth.tolist(), "call": call.tolist(),
                      "accuracy": accuracy_score(truth, call),
                      "sensitivity": recall_score(truth, call, pos_label=1),
                      "specificity": recall_score(truth, call, pos_label=0)})
    return cases


def kappa_cases():
    cases = []
    for n, k in [(20, 2), (50, 5), (80, 10), (30, 5)]:
        a = rng.integers(1, k + 1, n)
        b = np.where(rng.random(n) < 0.6, a, rng.integers(1, k + 1, n))
        labels = list(range(1, k + 1))
        cases.append({"a": a.tolist(), "b": b.tolist(), "labels": labels,
                      "unweighted": cohen_kappa_score(a, b, labels=labels),
                      "linear": cohen_kappa_score(a, b, labels=labels, weights="linear"),
                      "quadratic": cohen_kappa_score(a, b, labels=labels, weights="quadratic")})
    return cases


def fleiss_cases():
    cases = []
    for subjects, raters, categories in [(30, 3, 2), (40, 5, 2), (25, 4, 5)]:
        truth = rng.integers(0, categories, subjects)
        ratings = np.where(rng.random((subjects, raters)) < 0.65, truth[:, None],
                           rng.integers(0, categories, (subjects, raters)))
        table, _ = aggregate_raters(ratings, n_cat=categories)
        cases.append({"table": table.tolist(), "kappa": fleiss_kappa(table, method="fleiss")})
    return cases


def percentile_cases():
    values = rng.normal(0.7, 0.05, 997)
    return [{"values": values.tolist(), "q": q, "result": float(np.percentile(values, q * 100))}
            for q in [0.0, 0.025, 0.5, 0.975, 1.0]]


def reading_case():
    """A 3-reader, 60-case reading on the combined 1..10 scale; reader3 skipped 5 cases."""
    cases = [f"case-{i:04d}" for i in range(1, 61)]
    truth = np.array([1] * 30 + [0] * 30)
    rng.shuffle(truth)
    difficulty = rng.normal(0, 0.8, 60)
    readers = {"reader1": 1.2, "reader2": 0.8, "reader3": 0.4}
    rows = []
    for reader, skill in readers.items():
        latent = skill * truth + difficulty + rng.normal(0, 0.9, 60)
        ratings = np.clip(np.round(latent * 2 + 5.5), 1, 10).astype(int)
        for i, case in enumerate(cases):
            if reader == "reader3" and i % 12 == 5:
                continue
            rows.append((reader, case, int(ratings[i])))
    threshold = 6
    lines = ["Synthetic reading for Thorax Workbench golden tests (tools/make_study_fixtures.py).",
             "Truth 1 = artificial.", "BEGIN DATA:"]
    lines += [f"truth, {case}, truth, {int(t)}" for case, t in zip(cases, truth)]
    lines += [f"{r}, {c}, blinded, {s}" for r, c, s in rows]
    with open(os.path.join(OUT, "reading.imrmc"), "w") as f:
        f.write("\n".join(lines) + "\n")
    truth_of = dict(zip(cases, truth.tolist()))

    def perf(subset):
        t = np.array([truth_of[c] for _, c, _ in subset])
        s = np.array([s for _, _, s in subset], dtype=float)
        call = (s >= threshold).astype(int)
        correct = int((call == t).sum())
        return {"readings": len(subset), "auc": roc_auc_score(t, s), "accuracy": accuracy_score(t, call),
                "correct": correct, "binomial_p": binomtest(correct, len(subset), 0.5).pvalue,
                "sensitivity": recall_score(t, call, pos_label=1),
                "specificity": recall_score(t, call, pos_label=0)}

    def bootstrap_ci(subset, resamples=4000, seed=5):
        by_case = {}
        for r, c, s in subset:
            by_case.setdefault(c, []).append((truth_of[c], s))
        keys = sorted(by_case)
        boot = np.random.default_rng(seed)
        aucs = []
        for _ in range(resamples):
            drawn = boot.integers(0, len(keys), len(keys))
            pairs = [p for i in drawn for p in by_case[keys[i]]]
            t = [p[0] for p in pairs]
            if len(set(t)) < 2:
                continue
            aucs.append(roc_auc_score(t, [p[1] for p in pairs]))
        return [float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))]

    per_reader = {}
    for reader in readers:
        subset = [row for row in rows if row[0] == reader]
        per_reader[reader] = perf(subset) | {"auc_ci_python_bootstrap": bootstrap_ci(subset)}
    pooled = perf(rows) | {"auc_ci_python_bootstrap": bootstrap_ci(rows)}
    pairwise = []
    names = list(readers)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra = {c: s for r, c, s in rows if r == a}
            rb = {c: s for r, c, s in rows if r == b}
            common = [c for c in cases if c in ra and c in rb]
            sa = [ra[c] for c in common]
            sb = [rb[c] for c in common]
            ca = [int(s >= threshold) for s in sa]
            cb = [int(s >= threshold) for s in sb]
            pairwise.append({"reader_a": a, "reader_b": b, "cases": len(common),
                             "cohen_kappa": cohen_kappa_score(ca, cb),
                             "weighted_kappa_linear": cohen_kappa_score(sa, sb, weights="linear"),
                             "weighted_kappa_quadratic": cohen_kappa_score(sa, sb, weights="quadratic")})
    complete = [c for c in cases if sum(1 for r, cc, _ in rows if cc == c) == len(readers)]
    calls = np.array([[int(s >= threshold) for r, cc, s in rows if cc == c] for c in complete])
    table, _ = aggregate_raters(calls, n_cat=2)
    golden = {"call_threshold": threshold, "per_reader": per_reader, "pooled": pooled,
              "reader_average_auc": float(np.mean([v["auc"] for v in per_reader.values()])),
              "pairwise": pairwise, "fleiss": {"cases": len(complete), "kappa": fleiss_kappa(table)}}
    with open(os.path.join(OUT, "reading_golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    golden = {"versions": {"scipy": scipy.__version__, "sklearn": sklearn.__version__,
                           "statsmodels": statsmodels.__version__, "numpy": np.__version__},
              "binomtest": binomial_cases(), "roc_auc": roc_cases(), "confusion": confusion_cases(),
              "cohen_kappa": kappa_cases(), "fleiss_kappa": fleiss_cases(), "percentile": percentile_cases()}
    with open(os.path.join(OUT, "stats_golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    reading_case()


if __name__ == "__main__":
    main()

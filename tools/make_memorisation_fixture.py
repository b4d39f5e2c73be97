"""Golden values for the memorisation audit (src/metrics/memorisation.rs), made once with scikit-learn and numpy.

Writes tests/fixtures/metrics/memorisation.json: three random feature sets (some generated rows are noisy copies of
training rows, one row is all zeros), the nearest training row and cosine similarity of every generated and held-out
row (sklearn.metrics.pairwise.cosine_similarity of the rows centred on the training mean + numpy argmax), the held-out 99th percentile (numpy linear) and the
flagged generated rows.
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics.pairwise import cosine_similarity

rng = np.random.default_rng(20261127)
dim = 32
training = rng.random((40, dim), dtype=np.float32)
heldout = rng.random((25, dim), dtype=np.float32)
generated = rng.random((30, dim), dtype=np.float32)
# Near-copies of training rows 3, 17 and 29, and one row at the training mean.
for g, t in [(2, 3), (11, 17), (20, 29)]:
    generated[g] = training[t] + rng.normal(0, 0.002, dim).astype(np.float32)
generated[5] = training.mean(axis=0)  # centred, an all-zero row (similarity 0 by scikit-learn's convention)


# The audit centres every embedding on the training set's mean (float64) before the cosine similarity.
mean = training.astype(np.float64).mean(axis=0)


def nearest(queries):
    sims = cosine_similarity(queries.astype(np.float64) - mean, training.astype(np.float64) - mean)
    idx = sims.argmax(axis=1)
    return idx.tolist(), sims[np.arange(len(queries)), idx].tolist()


g_idx, g_sim = nearest(generated)
h_idx, h_sim = nearest(heldout)
threshold = float(np.percentile(np.array(h_sim), 99.0))
flagged = sorted([i for i, s in enumerate(g_sim) if s > threshold], key=lambda i: -g_sim[i])
out = {
    "generator": f"tools/make_memorisation_fixture.py with scikit-learn {sklearn.__version__}, numpy {np.__version__}",
    "training": training.tolist(),
    "heldout": heldout.tolist(),
    "generated": generated.tolist(),
    "generated_nearest_index": g_idx,
    "generated_nearest_similarity": g_sim,
    "heldout_nearest_index": h_idx,
    "heldout_nearest_similarity": h_sim,
    "threshold_percentile": 99.0,
    "threshold": threshold,
    "flagged": flagged,
}
path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/metrics/memorisation.json"
path.write_text(json.dumps(out))
print(path, "flagged", flagged, "threshold", threshold)

"""Read-back rate of pickled fold models (what fusion pays to load the blend's members):
forests and HistGradientBoosting on letter-like data (12,000 rows, 26 classes).

    python benchmarks/bench_load.py

Sets ``autofuse._library.LOAD_BYTES_PER_SECOND``, the rate the search uses to keep time for
loading the likely members.
"""
import os
import pickle
import tempfile
import time

from sklearn.datasets import make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)

X, y = make_classification(12000, 16, n_informative=12, n_classes=26, n_clusters_per_class=1,
                           random_state=0)
for name, m in [("extra_trees", ExtraTreesClassifier(60, n_jobs=2, random_state=0)),
                ("random_forest", RandomForestClassifier(60, n_jobs=2, random_state=0)),
                ("hgb", HistGradientBoostingClassifier(max_iter=50, random_state=0))]:
    m.fit(X, y)
    path = os.path.join(tempfile.gettempdir(), f"autofuse-bench-load-{name}.pkl")
    with open(path, "wb") as f:
        pickle.dump([m, m], f, protocol=pickle.HIGHEST_PROTOCOL)
    size = os.path.getsize(path)
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        with open(path, "rb") as f:
            pickle.load(f)
        best = min(best, time.perf_counter() - t)
    print(f"{name}: {size/1e6:.0f} MB, load {best:.2f} s, {size/best/1e6:.0f} MB/s")
    os.remove(path)

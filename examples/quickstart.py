"""The main job: an AutoML run on scikit-learn's bundled breast-cancer table.

autofuse searches its built-in learners for 30 seconds, fuses the best of them, and we
compare the blend with its best single model on a held-out quarter of the rows.

    python examples/quickstart.py [time_limit_seconds]
"""

from __future__ import annotations

import sys
import time

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

import autofuse


def main() -> None:
    time_limit = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    y = y.map({0: "malignant", 1: "benign"})
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    t = time.perf_counter()
    model = autofuse.fit(X_train, y_train, time_limit=time_limit, random_state=0)
    wall = time.perf_counter() - t

    pd.set_option("display.width", 120)
    board = model.leaderboard()
    print(board[["model", "learner", "roc_auc", "outer_score", "fit_seconds", "weight",
                 "status"]].head(15).to_string())
    positive = list(model.classes_).index("malignant")
    for name, proba in (("blend", model.predict_proba(X_test)),
                        ("best single", model.predict_best_single(X_test))):
        auc = roc_auc_score(y_test == "malignant", proba[:, positive])
        acc = accuracy_score(y_test, model.classes_[proba.argmax(axis=1)])
        print(f"test {name:<12} roc_auc {auc:.4f}  accuracy {acc:.4f}")
    trials = int((board["kind"] == "trial").sum())
    print(f"{trials} trials in {wall:.1f} s (budget {time_limit:g} s); {model.combiner_} "
          f"(chosen by auto, outer roc_auc {model.outer_score_:.4f}) of "
          f"{len(model.weights_)} models: {', '.join(model.weights_.index)}")


if __name__ == "__main__":
    main()

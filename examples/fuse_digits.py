"""Fuse a small library of scikit-learn models with Caruana ensemble selection.

The job autofuse automates, done by hand on scikit-learn's bundled digits data: build
out-of-fold predictions for a library of models, let ``CaruanaSelection`` choose the blend,
and compare it with the best single model on a held-out test set.

    python examples/fuse_digits.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import autofuse._core
from autofuse.combiners import CaruanaSelection


def library() -> dict[str, object]:
    models: dict[str, object] = {}
    for C in (0.01, 0.1, 1.0):
        models[f"logreg C={C}"] = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    for leaf in (1, 3, 10):
        models[f"forest leaf={leaf}"] = RandomForestClassifier(300, min_samples_leaf=leaf, random_state=0)
        models[f"extra-trees leaf={leaf}"] = ExtraTreesClassifier(300, min_samples_leaf=leaf, random_state=0)
    for k in (3, 10, 30):
        models[f"knn k={k}"] = make_pipeline(StandardScaler(), KNeighborsClassifier(k, weights="distance"))
    for gamma in ("scale", 0.005):
        svm = CalibratedClassifierCV(SVC(gamma=gamma), ensemble=False)
        models[f"svm gamma={gamma}"] = make_pipeline(StandardScaler(), svm)
    models["naive bayes"] = GaussianNB()
    return models


def main() -> None:
    start = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    models = library()
    print(f"digits: {len(X_train)} training rows, {len(X_test)} test rows, {len(models)} models, "
          f"selection core: {autofuse._core.backend()}")

    oof, test = [], []
    for name, model in models.items():
        oof.append(cross_val_predict(model, X_train, y_train, cv=folds, method="predict_proba", n_jobs=-1))
        test.append(model.fit(X_train, y_train).predict_proba(X_test))
    oof, test = np.array(oof), np.array(test)  # (n_models, n_rows, n_classes)

    t = time.perf_counter()
    selector = CaruanaSelection("log_loss", ensemble_size=50, init_size=1).fit(oof, y_train)
    select_ms = (time.perf_counter() - t) * 1000

    names = list(models)
    print(f"\n{'model':<24}{'oof log_loss':>14}{'test log_loss':>15}{'test accuracy':>15}{'weight':>8}")
    for m, name in enumerate(names):
        print(f"{name:<24}{log_loss(y_train, oof[m]):>14.4f}{log_loss(y_test, test[m]):>15.4f}"
              f"{accuracy_score(y_test, test[m].argmax(1)):>15.4f}{selector.weights_[m]:>8.2f}")
    best = int(np.argmin([log_loss(y_train, p) for p in oof]))
    blend = selector.predict(test)
    print(f"\nbest single model (by oof log_loss): {names[best]}")
    print(f"  test log_loss {log_loss(y_test, test[best]):.4f}   accuracy {accuracy_score(y_test, test[best].argmax(1)):.4f}")
    print(f"Caruana blend of {np.count_nonzero(selector.weights_)} models "
          f"({selector.n_rounds_} rounds kept, selected in {select_ms:.1f} ms):")
    print(f"  test log_loss {log_loss(y_test, blend):.4f}   accuracy {accuracy_score(y_test, blend.argmax(1)):.4f}")
    print(f"  oof log_loss {selector.score_:.4f} (best single {log_loss(y_train, oof[best]):.4f})")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

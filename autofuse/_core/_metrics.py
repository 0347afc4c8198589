"""The metrics the selection core scores natively, and how their losses map to scores.

Every kernel (the Cython one and the NumPy reference) returns a *loss*: lower is better,
normalised so that losses of different rounds are comparable. ``CoreMetric.score`` turns
a loss back into the metric as users know it (accuracy, not minus accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

# Kernel ids, shared with _kernels.pyx (keep in sync).
LOG_LOSS, ACCURACY, BALANCED_ACCURACY, ROC_AUC, F1, MSE, RMSE, MAE, R2 = range(9)

#: Probabilities are clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`` before the logarithm,
#: the machine epsilon of float64 (what scikit-learn uses for float64 input). The core
#: computes in float64 whatever the input dtype, so float32 input is clipped the same way.
LOG_LOSS_EPS = 2.220446049250313e-16


@dataclass(frozen=True)
class CoreMetric:
    """A metric with a fused kernel in the core."""

    name: str
    kernel: int
    task: str  # "classification" or "regression"
    greater_is_better: bool
    binary_only: bool = False

    def score(self, loss: float) -> float:
        """The metric's value for a kernel loss."""
        if self.kernel == R2:
            return 1.0 - loss
        return -loss if self.greater_is_better else loss


CORE_METRICS: dict[str, CoreMetric] = {
    m.name: m
    for m in (
        CoreMetric("log_loss", LOG_LOSS, "classification", False),
        CoreMetric("accuracy", ACCURACY, "classification", True),
        CoreMetric("balanced_accuracy", BALANCED_ACCURACY, "classification", True),
        CoreMetric("roc_auc", ROC_AUC, "classification", True),
        CoreMetric("f1", F1, "classification", True, binary_only=True),
        CoreMetric("mse", MSE, "regression", False),
        CoreMetric("rmse", RMSE, "regression", False),
        CoreMetric("mae", MAE, "regression", False),
        CoreMetric("r2", R2, "regression", True),
    )
}

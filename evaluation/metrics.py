"""Point estimates with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (fixed seed, so a report is reproducible)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(values: np.ndarray, scale: float = 1.0, confidence: float = 0.95) -> dict[str, float]:
    """Mean and CI of ``values * scale``."""
    v = np.asarray(values, dtype=np.float64) * scale
    low, high = bootstrap_ci(v, confidence)
    return {"mean": float(v.mean()) if len(v) else float("nan"), "ci_low": low, "ci_high": high,
            "confidence": confidence, "n": int(len(v))}

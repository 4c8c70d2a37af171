"""Aggregation across tasks and seeds with ``rliable`` (Agarwal et al., NeurIPS 2021).

Scores enter as fractions in [0, 1] (success rate, or normalised score / 100) arranged ``(runs, tasks)`` per
method; out come IQM, mean, median and optimality gap with stratified-bootstrap 95% CIs, and performance profiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

AGGREGATES = ("iqm", "mean", "median", "optimality_gap")


def _aggregate_fn(x: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x), metrics.aggregate_median(x),
                     metrics.aggregate_optimality_gap(x)])


def aggregate(scores: dict[str, np.ndarray], reps: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {aggregate: {value, ci_low, ci_high}}}`` for ``scores[method]`` of shape (runs, tasks).

    With a single run per task the bootstrap resamples runs within tasks (stratified), so the CI reflects only
    what the data can show; methods with one run get a degenerate CI, which the leaderboard prints as such.
    """
    from rliable import library as rly

    point, intervals = rly.get_interval_estimates(scores, _aggregate_fn, reps=reps, confidence_interval_size=confidence,
                                                  random_state=np.random.RandomState(seed))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method in scores:
        out[method] = {
            name: {"value": float(point[method][i]), "ci_low": float(intervals[method][0, i]),
                   "ci_high": float(intervals[method][1, i])}
            for i, name in enumerate(AGGREGATES)
        }
    return out


def performance_profiles(scores: dict[str, np.ndarray], taus: np.ndarray | None = None,
                         reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Score distributions (fraction of runs above each threshold tau) with bootstrap CIs."""
    from rliable import library as rly

    taus = np.linspace(0.0, 1.0, 21) if taus is None else taus
    np.random.seed(seed)  # create_performance_profile bootstraps with NumPy's global generator
    dist, cis = rly.create_performance_profile(scores, taus, reps=reps)
    return {"taus": taus.tolist(),
            "profiles": {m: {"value": dist[m].tolist(), "ci_low": cis[m][0].tolist(), "ci_high": cis[m][1].tolist()}
                         for m in scores}}

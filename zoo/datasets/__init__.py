"""Datasets: load OGBench / Minari data as a :class:`Dataset`, and rebuild them locally when they are missing.

``load(dataset_id)`` returns the design's dataset object; ``Dataset.from_arrays(...)`` wraps a user's own data.
"""

from agents.core.dataset import Dataset
from zoo.datasets.ogbench import DatasetMissingError, build, dataset_dir, load, status

__all__ = ["Dataset", "DatasetMissingError", "build", "dataset_dir", "load", "status"]

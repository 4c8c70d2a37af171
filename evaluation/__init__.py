"""Evaluation: the task registry, rollouts of anything with SB3's ``predict``, and metrics.

This package does not import ``agents``: it scores genzoo agents and SB3 models alike.
"""

from evaluation.rollouts import evaluate
from evaluation.tasks import TASKS, Protocol, Task, get

__all__ = ["TASKS", "Protocol", "Task", "evaluate", "get"]

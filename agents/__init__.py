"""genzoo's methods: one file each; what they share lives in ``agents.core``."""

from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.dataset import Dataset
from agents.fql import FQL

ALGOS: dict[str, type[GenerativeAgent]] = {"FQL": FQL}

__all__ = ["ALGOS", "FQL", "Dataset", "GenerativeAgent", "GenerativePolicy"]

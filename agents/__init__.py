"""genzoo's methods: one file each; what they share lives in ``agents.core``."""

from agents.consistency import ConsistencyAC, ConsistencyBC
from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.dataset import Dataset
from agents.diffusion_ql import DiffusionBC, DiffusionQL
from agents.fql import FQL
from agents.moma_ql import MoMaQL
from agents.qam import QAM, TRQAM
from agents.rfm import RFM

ALGOS: dict[str, type[GenerativeAgent]] = {
    "FQL": FQL,
    "MoMaQL": MoMaQL,
    "DiffusionBC": DiffusionBC,
    "DiffusionQL": DiffusionQL,
    "ConsistencyBC": ConsistencyBC,
    "ConsistencyAC": ConsistencyAC,
    "QAM": QAM,
    "TRQAM": TRQAM,
    "RFM": RFM,
}

__all__ = [
    "ALGOS",
    "ConsistencyAC",
    "ConsistencyBC",
    "Dataset",
    "DiffusionBC",
    "DiffusionQL",
    "FQL",
    "GenerativeAgent",
    "GenerativePolicy",
    "MoMaQL",
    "QAM",
    "RFM",
    "TRQAM",
]

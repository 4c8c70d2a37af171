"""The bundled catalogue: published checkpoints shipped in ``zoo/checkpoints`` with their cards in ``model_cards/``.

``bundle(model_dir)`` publishes a finished run's ``model/`` folder into the catalogue: the Hub repo files
(never a training state) under ``zoo/checkpoints/{org}/{name}``, with the card re-rendered for that repo id, and a
byte-identical copy of the card in ``model_cards/{name}.md`` (what ``push_to_hub`` uploads as README.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import hub

MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


def bundle(model_dir: str | Path, repo_id: str | None = None) -> Path:
    """Copy a checkpoint into the bundled catalogue under ``repo_id`` (default: the id scheme) and write its card."""
    import zoo

    agent = zoo.load(model_dir)
    repo = repo_id or agent.default_repo_id()
    dest = hub.bundled_path(repo)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    agent.save_pretrained(tmp, repo_id=repo)
    for f in tmp.iterdir():
        if f.name not in hub.REPO_FILES:
            f.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    MODEL_CARDS.mkdir(exist_ok=True)
    shutil.copyfile(dest / "README.md", MODEL_CARDS / f"{repo.split('/', 1)[1]}.md")
    return dest

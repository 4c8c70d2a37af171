"""The bundled catalogue: published checkpoints shipped in ``zoo/checkpoints`` with their cards in ``model_cards/``.

``bundle(model_dir)`` publishes a finished run's ``model/`` folder into the catalogue: the Hub repo files
(never a training state) under ``zoo/checkpoints/{org}/{name}``, with the card re-rendered for that repo id, a
``replay.mp4`` of the protocol's first evaluation episode when an offscreen renderer is available, and a
byte-identical copy of the card in ``model_cards/{name}.md`` (what ``push_to_hub`` uploads as README.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hub

MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"


def bundle(model_dir: str | Path, repo_id: str | None = None, video: bool = True, force: bool = False) -> Path:
    """Copy a checkpoint into the bundled catalogue under ``repo_id`` (default: the id scheme) and write its card.

    ``video``: record ``replay.mp4`` when the checkpoint has none and its task renders (see ``evaluation.video``).
    Refused unless ``force``: a checkpoint without an evaluation of its task's full protocol (the catalogue's scores
    are comparable only on that), and an id the catalogue already holds with other weights.
    """
    import zoo
    from evaluation import tasks
    from evaluation.video import VIDEO_FILE, record_replay

    agent = zoo.load(model_dir)
    repo = repo_id or agent.default_repo_id()
    dest = hub.bundled_path(repo)
    results = Path(model_dir) / "results.json"
    if not force:
        if (dest / hub.WEIGHTS_FILE).is_file() and (
                hub.weights_sha256(dest / hub.WEIGHTS_FILE) != hub.weights_sha256(Path(model_dir) / hub.WEIGHTS_FILE)):
            raise ValueError(f"the catalogue already holds {repo} with other weights ({dest}); choose another id "
                             "(--repo-id, or train with --variant) or replace it with --force")
        task = agent.config.get("task")
        if not results.is_file():
            raise ValueError(f"{model_dir} has no results.json: evaluate it first (genzoo eval {model_dir})")
        episodes = json.loads(results.read_text())["protocol"]["episodes"]
        wanted = tasks.get(task).protocol.episodes if task in tasks.TASKS else episodes
        if episodes < wanted:
            raise ValueError(f"{model_dir} was evaluated on {episodes} episodes; {task}'s protocol is {wanted} "
                             f"(genzoo eval {model_dir} --force), or bundle it with --force")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    task = agent.config.get("task")
    if video and task and not (Path(model_dir) / VIDEO_FILE).is_file():
        record_replay(agent, task, tmp / VIDEO_FILE)  # before the card, which links the video when it exists
    agent.save_pretrained(tmp, repo_id=repo)
    for f in tmp.iterdir():
        if f.name not in hub.REPO_FILES:
            f.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    MODEL_CARDS.mkdir(exist_ok=True)
    shutil.copyfile(dest / "README.md", MODEL_CARDS / f"{repo.split('/', 1)[1]}.md")
    return dest

"""Resolve a repo id or a directory to a local checkpoint directory, and push a folder to the Hub.

Order for a repo id: one ``snapshot_download`` through the HF cache (honouring ``revision``, ``HF_HUB_OFFLINE`` and
``local_files_only``); if the Hub cannot be reached and the cache has no copy, the bundled copy shipped in
``zoo/checkpoints/{org}/{name}`` (found by path, so ``hub`` knows no agent class). A warning says which copy was used.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path

from hub.files import CONFIG_FILE, CheckpointError, HubUnreachableError, without_zip

logger = logging.getLogger("genzoo.hub")

DEFAULT_ORG = "genzoo"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "zoo" / "checkpoints"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
# What a checkpoint repo holds; anything else in a repo (e.g. a pickle someone uploaded) is never downloaded.
REPO_FILES = ["model.safetensors", "config.json", "README.md", "results.json", "training_log.csv", "training_log.png",
              "replay.mp4"]


def repo_id(algo: str, task: str, seed: int, variant: str | None = None, org: str = DEFAULT_ORG) -> str:
    """The Hub id scheme ``{org}/{algo}-{task}[-{variant}]-seed{n}``; slashes in task ids become ``-``."""
    name = f"{algo.lower()}-{task.replace('/', '-')}"
    if variant:
        name += f"-{variant}"
    return f"{org}/{name}-seed{seed}"


def bundled_path(repo: str) -> Path:
    return BUNDLED_DIR / repo


def bundled_ids() -> list[str]:
    """Repo ids of every bundled checkpoint."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in BUNDLED_DIR.glob(f"*/*/{CONFIG_FILE}"))


def is_repo_id(text: str) -> bool:
    return bool(_REPO_ID.match(text))


def resolve(repo_or_dir: str | os.PathLike, revision: str | None = None, local_files_only: bool = False) -> Path:
    """Return a local directory holding the checkpoint ``repo_or_dir`` (see the module docstring)."""
    path = without_zip(repo_or_dir)
    if path.exists():
        return path
    text = str(repo_or_dir)
    if not is_repo_id(text):
        raise CheckpointError(f"no checkpoint directory at {path} and {text!r} is not a repo id of the form org/name")
    from huggingface_hub import snapshot_download

    try:
        local = Path(snapshot_download(text, revision=revision, local_files_only=local_files_only,
                                       allow_patterns=REPO_FILES, library_name="genzoo"))
        logger.info("using %s from the Hugging Face cache at %s", text, local)
        return local
    except Exception as err:  # offline, unreachable, unknown repo: every failure falls back to the bundled copy
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    bundled = bundled_path(text)
    if (bundled / CONFIG_FILE).is_file():
        if revision is not None:
            logger.warning("the bundled copy of %s has no revisions; ignoring revision=%r", text, revision)
        logger.warning("Hub not reachable for %s (%s); using the bundled copy at %s", text, reason, bundled)
        return bundled
    raise CheckpointError(
        f"{text!r} could not be downloaded ({reason}) and is not bundled with genzoo; "
        f"bundled ids: {', '.join(bundled_ids()) or 'none'}"
    )


def push_folder(folder: str | os.PathLike, repo: str, commit_message: str | None = None, private: bool = False,
                token: str | None = None, revision: str | None = None) -> str:
    """Create ``repo`` if needed and upload the checkpoint files of ``folder`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    files = [f for f in REPO_FILES if (folder / f).is_file()]
    missing = [f for f in ("model.safetensors", CONFIG_FILE, "README.md") if f not in files]
    if missing:
        raise CheckpointError(f"{folder} lacks {', '.join(missing)}: write it with save_pretrained first")
    api = HfApi(token=token)
    unreachable = _network_errors()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo, folder_path=str(folder), allow_patterns=files, revision=revision,
                                 commit_message=commit_message or f"Upload {repo} with genzoo")
    except unreachable as err:
        reason = f"{type(err).__name__}: {str(err).splitlines()[0]}" if str(err) else type(err).__name__
        raise HubUnreachableError(
            f"the Hugging Face Hub is not reachable ({reason}); nothing was uploaded to {repo}"
        ) from err
    return str(info.commit_url)


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "no connection to the Hub", whichever HTTP client huggingface_hub uses.

    Offline, ``HfApi`` raises the transport error of its client (``httpx2.ConnectError`` with huggingface_hub 2.x,
    ``requests.ConnectionError`` with 0.x) or, under ``HF_HUB_OFFLINE=1``, ``OfflineModeIsEnabled`` (a
    ``ConnectionError``). HTTP status errors (401, 403, 404) are not among them: the Hub answered, and its message
    is the useful one.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests.exceptions", ("ConnectionError", "Timeout"))):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        errors += [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    return tuple(errors)

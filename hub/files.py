"""The on-disk checkpoint format: ``model.safetensors`` + ``config.json``, never a pickle.

A checkpoint directory is a Hub repo (../DESIGN.md, "Checkpoint"). Loading reads only safetensors and JSON; anything
else (an SB3 zip, a ``.pt`` / ``.bin`` / ``.pkl`` file) is refused before a byte of it is deserialised.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAINING_STATE_FILE = "training_state.safetensors"
LIBRARY = "genzoo"
_PICKLE_SUFFIXES = (".zip", ".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")


class CheckpointError(ValueError):
    """A path that is not a loadable genzoo checkpoint; the message says why and what to do."""


class HubUnreachableError(CheckpointError):
    """The Hugging Face Hub could not be reached (offline, DNS, refused, timed out); nothing on disk was changed.

    A :class:`CheckpointError` (so a ``ValueError``) so that the CLI reports it in one line, as it does bad input.
    """


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A JSON description of a Box space (infinite bounds written as the strings ``"inf"`` / ``"-inf"``)."""
    if not isinstance(space, spaces.Box):
        raise TypeError(f"genzoo checkpoints describe Box spaces only, got {type(space).__name__}")

    def enc(a: np.ndarray) -> list:
        return [x if math.isfinite(x) else ("inf" if x > 0 else "-inf") for x in np.asarray(a, float).ravel().tolist()]

    return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype), "low": enc(space.low),
            "high": enc(space.high)}


def space_from_json(desc: dict[str, Any]) -> spaces.Box:
    if desc.get("type") != "Box":
        raise CheckpointError(f"unsupported space in config.json: {desc.get('type')!r}")
    shape = tuple(desc["shape"])
    low = np.array([float(x) for x in desc["low"]], dtype=np.float64).reshape(shape)
    high = np.array([float(x) for x in desc["high"]], dtype=np.float64).reshape(shape)
    return spaces.Box(low.astype(desc["dtype"]), high.astype(desc["dtype"]), shape=shape, dtype=desc["dtype"])


def without_zip(path: str | os.PathLike) -> Path:
    """SB3 names checkpoints ``name.zip`` (``CheckpointCallback``, ``model.save("name")``): genzoo writes the directory
    ``name`` for such a path and reads it back when ``name.zip`` is asked for and no such file exists."""
    path = Path(path).expanduser()
    if path.suffix == ".zip" and not path.exists():
        return path.with_suffix("")
    return path


def write_checkpoint(directory: str | os.PathLike, tensors: dict, config: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` (fp32, contiguous) and ``config.json`` into ``directory`` (``x.zip`` -> ``x``)."""
    from safetensors.torch import save_file

    directory = without_zip(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"library": LIBRARY, "format_version": FORMAT_VERSION, **config}
    weights = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format": "pt", "library": LIBRARY, "format_version": str(FORMAT_VERSION)}
    _atomic(directory / WEIGHTS_FILE, lambda p: save_file(weights, str(p), metadata=meta))
    _atomic(directory / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n"))
    return directory


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # published files are read by others (safetensors writes 0600)
    os.replace(tmp, path)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``config.json`` of a checkpoint directory."""
    directory = _check_directory(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_FILE}: it is not a genzoo checkpoint")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the checkpoint is corrupt, download it again") from err
    library = config.get("library") if isinstance(config, dict) else None
    if library != LIBRARY:
        raise CheckpointError(f"{path} does not describe a genzoo checkpoint (library={library!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this genzoo reads up to {FORMAT_VERSION}: upgrade genzoo"
        )
    validate_config(config, path)
    return config


def read_tensors(path: str | os.PathLike, device: str = "cpu", require_genzoo: bool = False) -> dict:
    """Read a safetensors file, turning a corrupt or foreign file into a :class:`CheckpointError`.

    ``require_genzoo`` also refuses a valid safetensors file whose header was not written by genzoo (e.g. a
    transformers model renamed to model.safetensors).
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        if require_genzoo:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            # Files written before the library key existed carry only {"format": "pt"}; their tensor names are
            # checked against the agent before anything is assigned.
            if meta.get("library", LIBRARY) != LIBRARY:
                raise CheckpointError(
                    f"{path} is a safetensors file with a foreign header (metadata {meta}); "
                    "it was not written by genzoo"
                )
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); the checkpoint is corrupt") from err


def weights_sha256(path: str | os.PathLike) -> str:
    """A digest of a safetensors file's tensors (names, dtypes, shapes, bytes), blind to header metadata, so a
    checkpoint re-saved with other metadata keeps its identity."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    tensors = read_tensors(path)
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def validate_config(config: dict[str, Any], path: str | os.PathLike = "config.json") -> None:
    """Check config.json against the schema of the current format (clear message on the first problem)."""
    schema: dict[str, tuple[type | tuple[type, ...], bool]] = {
        "library": (str, True),
        "format_version": (int, True),
        "algo": (str, True),
        "algo_kwargs": (dict, True),
        "observation_space": (dict, True),
        "action_space": (dict, True),
        "task": ((str, type(None)), False),
        "env_id": ((str, type(None)), False),
        "dataset": ((dict, type(None)), False),
        "training": ((dict, type(None)), False),
    }
    for key, (kind, required) in schema.items():
        if key not in config:
            if required:
                raise CheckpointError(f"{path}: missing required key {key!r}")
            continue
        if not isinstance(config[key], kind):
            raise CheckpointError(f"{path}: {key!r} must be {getattr(kind, '__name__', kind)}, got {config[key]!r:.80}")
    for key in ("observation_space", "action_space"):
        desc = config[key]
        missing = {"type", "shape", "dtype", "low", "high"} - set(desc)
        if missing:
            raise CheckpointError(f"{path}: {key} lacks {sorted(missing)}")


def read_checkpoint(directory: str | os.PathLike, device: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """Return ``(tensors, config)`` of a checkpoint directory, validating both."""
    config = read_config(directory)
    return read_tensors(without_zip(directory) / WEIGHTS_FILE, device=device, require_genzoo=True), config


def _check_directory(directory: str | os.PathLike) -> Path:
    path = without_zip(directory)
    if path.is_file():
        hint = " (an SB3-style zip archive, which would unpickle)" if path.suffix == ".zip" else ""
        if path.suffix in _PICKLE_SUFFIXES:
            raise CheckpointError(
                f"{path} is a {path.suffix} file{hint}: genzoo never loads pickled checkpoints; "
                "a genzoo checkpoint is a directory with model.safetensors and config.json"
            )
        raise CheckpointError(f"{path} is a file; a genzoo checkpoint is a directory with {WEIGHTS_FILE} and {CONFIG_FILE}")
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint directory at {path}")
    if not (path / WEIGHTS_FILE).exists():
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickled:
            raise CheckpointError(
                f"{path} holds {', '.join(pickled)} but no {WEIGHTS_FILE}: genzoo never loads pickled weights"
            )
    return path

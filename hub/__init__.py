"""Hub I/O for genzoo checkpoints: the file format, repo ids and resolution to a local directory.

This floor knows no agent class; ``agents`` and ``zoo`` build on it.
"""

from hub.card import card_data, render_card
from hub.files import (
    CONFIG_FILE,
    FORMAT_VERSION,
    TRAINING_STATE_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    HubUnreachableError,
    read_checkpoint,
    read_config,
    read_tensors,
    space_from_json,
    space_to_json,
    weights_sha256,
    without_zip,
    write_checkpoint,
)
from hub.resolve import BUNDLED_DIR, REPO_FILES, bundled_ids, bundled_path, is_repo_id, push_folder, repo_id, resolve

__all__ = [
    "REPO_FILES",
    "BUNDLED_DIR",
    "bundled_path",
    "card_data",
    "is_repo_id",
    "push_folder",
    "render_card",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "TRAINING_STATE_FILE",
    "WEIGHTS_FILE",
    "CheckpointError",
    "HubUnreachableError",
    "bundled_ids",
    "read_checkpoint",
    "read_config",
    "read_tensors",
    "repo_id",
    "resolve",
    "space_from_json",
    "space_to_json",
    "weights_sha256",
    "without_zip",
    "write_checkpoint",
]

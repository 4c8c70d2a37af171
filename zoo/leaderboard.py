"""``genzoo leaderboard``: reload every catalogue checkpoint through the Hub layer, evaluate what is missing or
stale, and write the leaderboard files.

Results are cached by (digest of the checkpoint's tensors, protocol): a checkpoint's own ``results.json`` counts when its
hash and protocol match, otherwise the evaluation runs and lands in the cache folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import hub

DEFAULT_CACHE = Path("~/.cache/genzoo/eval").expanduser()


def _protocol_key(task_id: str, episodes: int | None, deterministic: bool | None) -> dict[str, Any]:
    from evaluation import tasks

    proto = tasks.get(task_id).protocol
    n = proto.episodes if episodes is None else episodes
    return {"task": task_id, "seeds": [proto.seed + i for i in range(n)],
            "deterministic": proto.deterministic if deterministic is None else deterministic,
            "max_episode_steps": proto.max_episode_steps}


def _matches(result: dict[str, Any], key: dict[str, Any], sha: str) -> bool:
    p = result.get("protocol", {})
    return (result.get("task") == key["task"] and p.get("seeds") == key["seeds"]
            and p.get("deterministic") == key["deterministic"] and p.get("max_episode_steps") == key["max_episode_steps"]
            and result.get("checkpoint_sha256", sha) == sha)


def run(methods: list[str] | None = None, tasks: list[str] | None = None, device: str = "auto",
        episodes: int | None = None, n_envs: int = 2, out_dir: str | Path = ".", cache_dir: str | Path = DEFAULT_CACHE,
        progress_bar: bool = True) -> dict[str, Path]:
    import zoo
    from evaluation import evaluate, leaderboard

    cache = Path(cache_dir).expanduser()
    rows, devices, versions = [], set(), {}
    for repo in hub.bundled_ids():
        path = hub.resolve(repo)
        config = hub.read_config(path)
        if (methods and config["algo"].lower() not in {m.lower() for m in methods}) or not config.get("task"):
            continue
        if tasks and config["task"] not in tasks:
            continue
        sha = hub.weights_sha256(path / hub.WEIGHTS_FILE)
        key = _protocol_key(config["task"], episodes, None)
        cached = cache / f"{sha[:16]}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}.json"
        result = None
        for candidate in (path / "results.json", cached):
            if candidate.is_file():
                r = json.loads(candidate.read_text())
                if _matches(r, key, sha):
                    result = r
                    break
        if result is None:
            agent = zoo.load(path, device=device)
            result = evaluate(agent, config["task"], seeds=key["seeds"], deterministic=key["deterministic"],
                              n_envs=n_envs, device=device, progress_bar=progress_bar)
            result["checkpoint_sha256"] = sha
            cache.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(result, indent=2) + "\n")
        devices.add(result.get("device", "cpu"))
        versions.update(result.get("versions") or {})
        rows.append(leaderboard.row_from_result(repo, config, result, sha))
    meta = {"device": ", ".join(sorted(devices)) or "none", "versions": versions,
            "note": "CUDA path exercised only where a GPU was available" if "cuda" not in " ".join(devices) else ""}
    return leaderboard.write(rows, out_dir, meta)

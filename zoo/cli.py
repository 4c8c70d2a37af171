"""The ``genzoo`` command line (also ``python -m zoo``).

    genzoo train fql ogbench/cube-single-task1 --steps 200000 --seed 0 --out runs/fql-cube1
    genzoo eval runs/fql-cube1/model --episodes 50
    genzoo pull genzoo/fql-ogbench-cube-single-task1-seed0
    genzoo push runs/fql-cube1/model --repo-id me/fql-cube1
    genzoo data build cube-single-play-v0 --workers 2
    genzoo data list | genzoo data verify
    genzoo list                       # bundled checkpoints with their scores
    genzoo demo                       # run the bundled FQL policy on ogbench/cube-single-task1
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

DEMO_REPO = "genzoo/fql-ogbench-cube-single-task1-seed0"


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items: list[str], option: str) -> dict[str, Any]:
    """``["k=v", ...]`` of a repeated option as a dict with JSON-parsed values; a clear error for a malformed item."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r} (e.g. {option} sampling_steps=4)")
        out[key.strip()] = _parse_value(value)
    return out


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _print_result(result: dict[str, Any]) -> None:
    agg = result["aggregate"]
    proto = result["protocol"]
    print(
        f"{result['task']}: {result['metric_label']} {agg['mean']:.1f} "
        f"(95% CI {agg['ci_low']:.1f}-{agg['ci_high']:.1f}) over {proto['episodes']} episodes "
        f"(seeds {proto['seeds'][0]}..{proto['seeds'][-1]}, deterministic={proto['deterministic']}); "
        f"{result['latency_ms_per_action']:.2f} ms per action"
    )


def cmd_train(args: argparse.Namespace) -> int:
    from zoo.train import STOPPED_EXIT_CODE, TrainingStopped, train

    overrides = _key_values(args.set, "--set")
    if args.bc_only:
        overrides["bc_only"] = True
    try:
        train(
            args.method,
            args.task,
            steps=args.steps,
            seed=args.seed,
            out=args.out,
            precision=args.precision,
            budget=args.budget,
            overrides=overrides,
            checkpoint_every=args.checkpoint_every,
            init_from=args.init_from,
            finetune_from=args.finetune_from,
            variant=args.variant,
            eval_every=args.eval_every,
            eval_every_episodes=args.eval_every_episodes,
            n_envs=args.n_envs,
            log_interval=args.log_interval,
            eval_episodes=args.eval_episodes,
            n_threads=args.threads,
            dataset_dir=args.dataset_dir,
            device=args.device,
            progress_bar=not args.no_progress,
            verbose=args.verbose,
        )
    except TrainingStopped as stopped:  # SIGTERM / SIGINT: checkpointed, resumable
        print(f"genzoo: {stopped}", file=sys.stderr)
        return STOPPED_EXIT_CODE
    print(f"done: {Path(args.out) / 'model'}")
    return 0


def _published_copy(path: Path) -> bool:
    """A bundled catalogue copy or a Hugging Face cache snapshot: evaluated, never written."""
    from huggingface_hub import constants

    import hub

    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in (hub.BUNDLED_DIR, constants.HF_HUB_CACHE))


def _compare_with_card(card: dict[str, Any], result: dict[str, Any]) -> str:
    """How an evaluation compares with the card's: on the same episode seeds, the scores should agree."""
    c = card["aggregate"]
    ours = result["aggregate"]["mean"]
    head = f"card: {c['mean']:.1f} (95% CI {c['ci_low']:.1f}-{c['ci_high']:.1f}) over {card['protocol']['episodes']} episodes"
    seeds = result["protocol"]["seeds"]
    if seeds == card["protocol"]["seeds"]:
        inside = c["ci_low"] <= ours <= c["ci_high"]
        return f"{head}; this evaluation {'reproduces it (inside the CI)' if inside else 'falls OUTSIDE the card CI'}"
    by_seed = {e["seed"]: e for e in card.get("episodes") or []}
    if not all(s in by_seed for s in seeds):
        return f"{head}; not compared: this evaluation used other episode seeds"
    scale = 100.0 if result["metric"] == "success" else 1.0
    card_same = scale * sum(float(by_seed[s][result["metric"]]) for s in seeds) / len(seeds)
    verdict = "the same" if abs(card_same - ours) < 1e-6 else "different (another machine or library version?)"
    return (f"{head}; on the same {len(seeds)} episode seeds the card's records give {card_same:.1f}: "
            f"this evaluation is {verdict}")


def cmd_eval(args: argparse.Namespace) -> int:
    import hub
    from zoo.train import evaluate_checkpoint, evaluate_run

    path = hub.resolve(args.checkpoint)
    own_run = Path(args.checkpoint).expanduser().is_dir() and not _published_copy(path)
    card = json.loads((path / "results.json").read_text()) if (path / "results.json").is_file() else None
    sampler = _key_values(args.sampler, "--sampler")
    where: Path | None
    if own_run and args.out is None and not sampler:  # a run folder of the user's: record results, refresh its card
        result, written = evaluate_run(path, episodes=args.episodes, device=args.device,
                                       progress_bar=not args.no_progress, force=args.force)
        where = path / "results.json" if written else None
        if not written:
            print(f"not written: {path / 'results.json'} holds a {card['protocol']['episodes']}-episode evaluation and "
                  f"this one has {result['protocol']['episodes']} (--force replaces it; --out FILE keeps this one apart)")
    else:  # a pulled or bundled checkpoint is read-only; a non-default sampler is an ablation, not the card's score
        try:
            result = evaluate_checkpoint(path, episodes=args.episodes, device=args.device,
                                         progress_bar=not args.no_progress, **sampler)
        except TypeError as err:  # predict() refused a sampler option: say so in one line
            raise ValueError(str(err)) from None
        where = Path(args.out) if args.out else None
        if where is not None:
            where.write_text(json.dumps(result, indent=2) + "\n")
    _print_result(result)
    if card is not None and not own_run and not sampler:
        print(_compare_with_card(card, result))
    if where is not None:
        print(f"per-episode records: {where}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    import hub

    path = hub.resolve(args.repo_id, revision=args.revision)
    print(path)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    import zoo
    from zoo.train import evaluate_run

    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "results.json").is_file() or args.reevaluate:
        evaluate_run(checkpoint, episodes=args.episodes, device="auto", force=args.reevaluate)
    agent = zoo.load(checkpoint)
    url = agent.push_to_hub(args.repo_id or agent.default_repo_id(), commit_message=args.message,
                            private=args.private, revision=args.revision)
    print(url)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import hub
    import zoo
    from evaluation import evaluate

    path = hub.resolve(args.repo)
    print(f"loading {args.repo} from {path}")
    agent = zoo.load(path, device=args.device)
    task = agent.config["task"]
    result = evaluate(agent, task, n_episodes=args.episodes, progress_bar=True)
    _print_result(result)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from zoo.leaderboard import run

    paths = run(methods=args.methods, tasks=args.tasks, device=args.device, episodes=args.episodes,
                n_envs=args.n_envs, out_dir=args.out)
    print("\n".join(str(p) for p in paths.values()))
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from zoo.catalog import bundle

    print(bundle(args.checkpoint, args.repo_id, video=not args.no_video, force=args.force))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import hub

    rows = []
    for rid in hub.bundled_ids():
        path = hub.bundled_path(rid)
        config = hub.read_config(path)
        training = config.get("training") or {}
        r = json.loads((path / "results.json").read_text()) if (path / "results.json").is_file() else None
        rows.append((rid, config, training, r))
    if args.markdown:
        print("| checkpoint | task | score | 95% CI | episodes | protocol | steps | precision | wall time | dataset |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    for rid, config, training, r in rows:
        if r is None:
            print(rid if not args.markdown else f"| {rid} | {config.get('task')} | not evaluated | | | | | | | |")
            continue
        a, p = r["aggregate"], r["protocol"]
        dataset = config.get("dataset") or {}
        rebuilt = ("rebuilt" if dataset.get("rebuilt") else "official") if dataset else "none (online)"
        if args.markdown:
            print(f"| `{rid}` | `{r['task']}` | {a['mean']:.1f} ({r['metric_label']}) | [{a['ci_low']:.1f}, {a['ci_high']:.1f}] "
                  f"| {p['episodes']} | seeds {p['seeds'][0]}..{p['seeds'][-1]}, deterministic={p['deterministic']}, "
                  f"{p['checkpoint']} checkpoint | {training.get('steps')} | {training.get('precision')} "
                  f"| {training.get('wall_time_s', 0) / 3600:.2f} h | {rebuilt} |")
        else:
            print(f"{rid}  {r['task']}  {r['metric_label']} {a['mean']:.1f} [{a['ci_low']:.1f}, {a['ci_high']:.1f}]"
                  f"  ({p['episodes']} episodes, deterministic={p['deterministic']}, dataset: {rebuilt})")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from zoo import datasets
    from zoo.datasets import ogbench_build

    if args.data_cmd == "build":
        built = None if args.force else datasets.existing_build(args.name, args.dataset_dir, num_episodes=args.episodes,
                                                                 total_steps=args.steps, seed=args.seed)
        if built is not None:
            print(f"{args.name} is already built with seed {args.seed} (manifest {built}); --force rebuilds it")
            return 0
        manifest = datasets.build(args.name, args.dataset_dir, num_episodes=args.episodes, total_steps=args.steps,
                                  workers=args.workers, seed=args.seed)
        m = json.loads(Path(manifest).read_text())
        print(f"built {args.name} in {m['build_seconds']:.0f} s; manifest {manifest}")
        return 0
    if args.data_cmd == "list":
        for row in datasets.status(args.dataset_dir):
            state = ("present (local rebuild)" if row["rebuilt"] else "present") if row["present"] else "missing"
            built = f"built in {row['build_seconds']:.0f} s" if row.get("build_seconds") is not None else ""
            if row.get("behaviour_run_seconds"):
                built += f"; {row['behaviour_algo']} run {row['behaviour_run_seconds'] / 3600:.1f} h"
            build = row["build"] + (f" --dataset-dir {args.dataset_dir}" if args.dataset_dir else "")
            print(f"{row['dataset']:34s} {state:24s} {built:32s} {row['path'] if row['present'] else build}")
        return 0
    if args.data_cmd == "verify":
        import numpy as np

        bad = 0
        for row in datasets.status(args.dataset_dir):
            if not row["manifest"]:
                continue
            for fname, meta in json.loads(Path(row["manifest"]).read_text())["files"].items():
                path = Path(row["files_root"]) / fname
                ok = path.is_file() and ogbench_build._sha256(path) == meta["sha256"]
                if not ok and path.is_file() and path.suffix == ".npz" and meta.get("arrays_sha256"):
                    # the same arrays compressed by another zlib (a copy rebuilt on another machine) still pass
                    with np.load(path) as npz:
                        ok = ogbench_build.arrays_sha256({k: npz[k] for k in npz.files}) == meta["arrays_sha256"]
                bad += not ok
                print(f"{row['dataset']:34s} {fname:32s} {'ok' if ok else 'MISMATCH (rebuild it)'}")
        return 1 if bad else 0
    if args.data_cmd == "stats":
        from zoo.datasets import stats

        text = stats.table(args.dataset_dir)
        print(text, end="")
        if args.readme:
            stats.write_readme(args.readme, text)
        return 0
    raise AssertionError(args.data_cmd)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genzoo", description="Generative-policy RL agents with pretrained checkpoints.")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train (or resume) a method on a task")
    t.add_argument("method", help="fql, diffusionbc, diffusionql, consistencybc, consistencyac, momaql, qam, trqam or rfm")
    t.add_argument("task", help="a task id such as ogbench/cube-single-task1 or minari/mujoco/hopper/medium-v0 "
                                "(`genzoo train fql x` lists them)")
    t.add_argument("--steps", type=_count(1), default=200_000, help="gradient steps (default: the zoo budget, 200k)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="run folder; rerun the same command to resume")
    t.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                   help="default fp32; with --finetune-from, the checkpoint's")
    t.add_argument("--budget", choices=["zoo", "paper"], default="zoo", help="zoo: 4x256 MLPs; paper: its sizes")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a constructor argument")
    t.add_argument("--bc-only", action="store_true",
                   help="QAM/TRQAM stage 1: flow-matching pretraining only (same as --set bc_only=true)")
    t.add_argument("--init-from", default=None, metavar="DIR",
                   help="QAM/TRQAM stage 2: start from the BC flow of a --bc-only run's model folder")
    t.add_argument("--finetune-from", default=None, metavar="CHECKPOINT",
                   help="offline-to-online: learn() in the task's env from this checkpoint (dir or repo id), keeping "
                        "the dataset in the buffer; published as the o2o variant")
    t.add_argument("--variant", default=None, help="repo-id variant of the published checkpoint (bc, eta0, ...)")
    t.add_argument("--checkpoint-every", type=_count(1), default=10_000)
    t.add_argument("--log-interval", type=_count(1), default=1_000)
    t.add_argument("--eval-episodes", type=_count(0), default=None, help="episodes at the end (default: the task's; 0 skips)")
    t.add_argument("--eval-every", type=_count(0), default=0, help="also score every N steps into the log (learning curve)")
    t.add_argument("--eval-every-episodes", type=_count(1), default=5, help="episodes per --eval-every point (default 5)")
    t.add_argument("--n-envs", type=_count(1), default=1, help="online: envs stepped together (steps count all of them)")
    t.add_argument("--threads", type=_count(1), default=1, help="torch threads (default 1: leaves a core free)")
    t.add_argument("--dataset-dir", default=None)
    t.add_argument("--device", default="auto")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("-v", "--verbose", action="count", default=0)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint (directory or repo id) on its task")
    e.add_argument("checkpoint", help="a run's model folder (results.json and card updated) or a repo id")
    e.add_argument("--episodes", type=_count(1), default=None, help="default: the task's protocol")
    e.add_argument("--out", default=None, help="write the per-episode records here")
    e.add_argument("--force", action="store_true",
                   help="replace a run folder's results.json even by an evaluation of fewer episodes")
    e.add_argument("--sampler", action="append", default=[], metavar="KEY=VALUE",
                   help="a predict() sampler option, e.g. sampling_steps=4 (recorded; the card is left alone)")
    e.add_argument("--device", default="auto")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("demo", help="run a bundled pretrained policy and print its success rate")
    d.add_argument("--repo", default=DEMO_REPO)
    d.add_argument("--episodes", type=_count(1), default=None)
    d.add_argument("--device", default="auto")
    d.set_defaults(func=cmd_demo)

    pl = sub.add_parser("pull", help="download a checkpoint into the HF cache (or find the bundled copy)")
    pl.add_argument("repo_id")
    pl.add_argument("--revision", default=None)
    pl.set_defaults(func=cmd_pull)

    ps = sub.add_parser("push", help="evaluate a checkpoint if needed, then upload it as a Hub repo")
    ps.add_argument("checkpoint")
    ps.add_argument("--repo-id", default=None, help="default: {org}/{algo}-{task}-seed{n}")
    ps.add_argument("--message", default=None)
    ps.add_argument("--private", action="store_true")
    ps.add_argument("--revision", default=None)
    ps.add_argument("--episodes", type=_count(1), default=None)
    ps.add_argument("--reevaluate", action="store_true")
    ps.set_defaults(func=cmd_push)

    lb = sub.add_parser("leaderboard", help="evaluate the catalogue (cached) and write leaderboard.{md,csv,json,png}")
    lb.add_argument("--methods", nargs="+", default=None)
    lb.add_argument("--tasks", nargs="+", default=None)
    lb.add_argument("--device", default="auto", help="cuda, cpu or auto")
    lb.add_argument("--episodes", type=_count(1), default=None, help="default: each task's protocol")
    lb.add_argument("--n-envs", type=_count(1), default=2)
    lb.add_argument("--out", default=".")
    lb.set_defaults(func=cmd_leaderboard)

    bd = sub.add_parser("bundle", help="publish a checkpoint into the bundled catalogue (zoo/checkpoints, model_cards)")
    bd.add_argument("checkpoint")
    bd.add_argument("--repo-id", default=None)
    bd.add_argument("--no-video", action="store_true", help="do not record replay.mp4")
    bd.add_argument("--force", action="store_true",
                    help="replace a bundled checkpoint of the same id, or bundle results off the task's protocol")
    bd.set_defaults(func=cmd_bundle)

    ls = sub.add_parser("list", help="the bundled checkpoints and their scores")
    ls.add_argument("--markdown", action="store_true", help="a Markdown table (as in RESULTS.md)")
    ls.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="build, list and verify datasets")
    dsub = data.add_subparsers(dest="data_cmd", required=True)
    b = dsub.add_parser("build", help="rebuild a dataset locally with the original recipe")
    b.add_argument("name")
    b.add_argument("--episodes", type=_count(1), default=None, help="OGBench: training episodes (default: the recipe's)")
    b.add_argument("--steps", type=_count(1), default=None, help="Minari: environment steps (default: the recipe's)")
    b.add_argument("--workers", type=_count(1), default=1)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--dataset-dir", default=None)
    b.add_argument("--force", action="store_true", help="rebuild even when a finished build with this seed and size exists")
    for name, helptext in (("list", "what exists, what is missing"), ("verify", "re-check sha256 against manifests")):
        x = dsub.add_parser(name, help=helptext)
        x.add_argument("--dataset-dir", default=None)
    st = dsub.add_parser("stats", help="episodes, transitions and behaviour-data success of every dataset present")
    st.add_argument("--dataset-dir", default=None)
    st.add_argument("--readme", default=None, help="also write the table into this file's dataset-stats block")
    data.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    from evaluation.video import prefer_headless_gl

    prefer_headless_gl()  # before any env imports mujoco: replay videos and renders need an offscreen GL
    # OGBench builds its spaces from float64 bounds: gymnasium warns on every env; nothing a CLI user can act on
    warnings.filterwarnings("ignore", message=r".*Box (low|high)'s precision lowered", category=UserWarning)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError) as err:  # bad input: a message, not a traceback
        print(f"genzoo: error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

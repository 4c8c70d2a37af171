import json
import subprocess
import sys

import pytest

from zoo.cli import main


def test_data_list_names_build_command(tmp_path, capsys):
    assert main(["data", "list", "--dataset-dir", str(tmp_path)]) == 0
    assert "genzoo data build cube-single-play-v0" in capsys.readouterr().out


def test_bad_input_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["train", "fql", "ogbench/nope", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown task id" in err and "Traceback" not in err
    assert main(["train", "fql", "ogbench/cube-single-task1", "--out", str(tmp_path / "r"),
                 "--dataset-dir", str(tmp_path / "empty")]) == 2
    assert "genzoo data build cube-single-play-v0" in capsys.readouterr().err


def test_train_eval_and_verify_through_the_cli(tmp_path, tiny_ogbench_dir, capsys):
    out = tmp_path / "run"
    assert main(["train", "fql", "ogbench/cube-single-task1", "--steps", "20", "--out", str(out), "--no-progress",
                 "--dataset-dir", str(tiny_ogbench_dir), "--eval-episodes", "0", "--checkpoint-every", "10",
                 "--log-interval", "10", "--set", "actor_hidden_dims=[16]", "--set", "value_hidden_dims=[16]"]) == 0
    assert main(["eval", str(out / "model"), "--episodes", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "success rate (%)" in text and "95% CI" in text
    assert json.loads((out / "model" / "results.json").read_text())["protocol"]["episodes"] == 2
    assert main(["data", "verify", "--dataset-dir", str(tiny_ogbench_dir)]) == 0


def test_eval_with_a_sampler_option_is_recorded_and_leaves_the_card(tmp_path, tiny_ogbench_dir):
    out = tmp_path / "run"
    assert main(["train", "momaql", "ogbench/cube-single-task1", "--steps", "10", "--out", str(out), "--no-progress",
                 "--dataset-dir", str(tiny_ogbench_dir), "--eval-episodes", "0", "--checkpoint-every", "10",
                 "--log-interval", "10", "--set", "actor_hidden_dims=[16]", "--set", "value_hidden_dims=[16]"]) == 0
    record = tmp_path / "steps8.json"
    assert main(["eval", str(out / "model"), "--episodes", "2", "--no-progress", "--sampler", "sampling_steps=8",
                 "--out", str(record)]) == 0
    assert json.loads(record.read_text())["protocol"]["sampler"]["sampling_steps"] == 8
    assert not (out / "model" / "results.json").exists()  # an ablation does not become the checkpoint's score


def test_python_dash_m_zoo():
    r = subprocess.run([sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True, check=True)
    assert "train" in r.stdout and "data" in r.stdout


def test_train_passes_the_learning_curve_and_finetuning_options(tmp_path, monkeypatch):
    import zoo.train

    seen = {}
    monkeypatch.setattr(zoo.train, "train", lambda method, task, **kw: seen.update(kw))
    assert main(["train", "fql", "ogbench/cube-double-task1", "--out", str(tmp_path / "r"), "--eval-every", "5000",
                 "--eval-every-episodes", "10", "--finetune-from", str(tmp_path / "base"), "--n-envs", "2"]) == 0
    assert seen["eval_every"] == 5000 and seen["eval_every_episodes"] == 10 and seen["n_envs"] == 2
    assert seen["precision"] is None  # the finetuned checkpoint's precision


def test_verify_accepts_the_same_arrays_compressed_differently_and_refuses_changed_ones(tmp_path, tiny_ogbench_dir,
                                                                                        capsys):
    import shutil
    import zipfile

    import numpy as np

    root = tmp_path / "copy"
    shutil.copytree(tiny_ogbench_dir, root)
    path = root / "cube-single-play-v0.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def rewrite(level: int, arrays: dict) -> None:  # another zlib setting: other bytes, same arrays
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
            for k, v in arrays.items():
                with z.open(f"{k}.npy", "w") as f:
                    np.lib.format.write_array(f, v)

    rewrite(1, arrays)
    assert main(["data", "verify", "--dataset-dir", str(root)]) == 0
    arrays["rewards"] = arrays["rewards"] + 1 if "rewards" in arrays else arrays["actions"] * 0.5
    rewrite(1, arrays)
    assert main(["data", "verify", "--dataset-dir", str(root)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def _tiny_run(out, dataset_dir, steps="20", seed="0"):
    return main(["train", "fql", "ogbench/cube-single-task1", "--steps", steps, "--seed", seed, "--out", str(out),
                 "--no-progress", "--dataset-dir", str(dataset_dir), "--eval-episodes", "0", "--checkpoint-every", "10",
                 "--log-interval", "10", "--set", "actor_hidden_dims=[16]", "--set", "value_hidden_dims=[16]"])


def test_malformed_options_are_one_line_errors_before_anything_is_read_or_written(tmp_path, capsys):
    import pytest

    empty = str(tmp_path / "empty")  # no dataset: an override checked after loading would fail on that instead
    for option, message in (("alpah=3", "did you mean alpha"), ("alpha", "expects KEY=VALUE"),
                            ("alpha=abc", "got the text 'abc'")):
        assert main(["train", "fql", "ogbench/cube-single-task1", "--set", option, "--out", str(tmp_path / "r"),
                     "--dataset-dir", empty]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["train", "fql", "ogbench/cube-single-task1", "--out", str(tmp_path / "r"), "--dataset-dir", empty]) == 2
    assert not (tmp_path / "r").exists()  # a failed start leaves no empty run folder
    for argv in (["eval", "x", "--episodes", "0"], ["train", "fql", "t", "--out", "o", "--steps", "0"]):
        with pytest.raises(SystemExit):
            main(argv)


def test_eval_keeps_a_longer_evaluation_unless_forced_and_records_the_full_command(tmp_path, tiny_ogbench_dir, capsys):
    out = tmp_path / "run"
    assert _tiny_run(out, tiny_ogbench_dir) == 0
    command = json.loads((out / "run.json").read_text())["command"]
    assert f"--out {out}" in command and "--steps 20" in command
    results = out / "model" / "results.json"
    assert main(["eval", str(out / "model"), "--episodes", "3", "--no-progress"]) == 0
    assert main(["eval", str(out / "model"), "--episodes", "2", "--no-progress"]) == 0
    assert "not written" in capsys.readouterr().out
    assert json.loads(results.read_text())["protocol"]["episodes"] == 3
    assert main(["eval", str(out / "model"), "--episodes", "2", "--no-progress", "--force"]) == 0
    assert json.loads(results.read_text())["protocol"]["episodes"] == 2
    assert _tiny_run(out, tiny_ogbench_dir, steps="30") == 0  # extended: the recorded command says so
    assert "--steps 30" in json.loads((out / "run.json").read_text())["command"]


def test_eval_of_a_published_copy_writes_nothing_and_compares_on_the_same_seeds(tmp_path, monkeypatch, capsys):
    import shutil

    import hub

    source = hub.bundled_path("genzoo/fql-ogbench-cube-single-task1-seed0")
    copy = tmp_path / "genzoo" / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("replay.mp4"))
    monkeypatch.setattr(hub, "BUNDLED_DIR", tmp_path)
    before = {f.name: f.read_bytes() for f in copy.iterdir()}
    assert main(["eval", str(copy), "--episodes", "2", "--no-progress"]) == 0
    assert {f.name: f.read_bytes() for f in copy.iterdir()} == before
    assert "on the same 2 episode seeds the card's records give 100.0: this evaluation is the same" in capsys.readouterr().out


def test_bundle_refuses_off_protocol_results_and_an_id_taken_by_other_weights(tmp_path, tiny_ogbench_dir, monkeypatch):
    import pytest

    import hub
    from zoo import catalog

    monkeypatch.setattr(sys.modules["hub.resolve"], "BUNDLED_DIR", tmp_path / "catalogue")
    monkeypatch.setattr(catalog, "MODEL_CARDS", tmp_path / "cards")
    first, second = tmp_path / "a", tmp_path / "b"
    assert _tiny_run(first, tiny_ogbench_dir) == 0 and _tiny_run(second, tiny_ogbench_dir, steps="30") == 0
    with pytest.raises(ValueError, match="evaluate it first"):
        catalog.bundle(first / "model", video=False)
    for run in (first, second):
        assert main(["eval", str(run / "model"), "--episodes", "2", "--no-progress"]) == 0
    with pytest.raises(ValueError, match="protocol is 50"):
        catalog.bundle(first / "model", video=False)
    dest = catalog.bundle(first / "model", video=False, force=True)
    catalog.bundle(first / "model", video=False, force=True)  # the same weights again: a refresh
    with pytest.raises(ValueError, match="already holds .* with other weights"):
        catalog.bundle(second / "model", video=False)
    assert hub.weights_sha256(dest / "model.safetensors") == hub.weights_sha256(first / "model" / "model.safetensors")


def test_train_help_names_every_method_and_unknown_tasks_get_suggestions(capsys):
    import pytest

    from agents import ALGOS
    from evaluation import tasks
    from zoo.cli import build_parser

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions if a.dest == "method")
    assert all(name.lower() in train.help for name in ALGOS)
    with pytest.raises(KeyError, match="did you mean ogbench/cube-single-task1"):
        tasks.get("ogbench/cube-singel-task1")


def test_data_build_of_a_finished_build_returns_it_and_force_rebuilds(tmp_path, tiny_ogbench_dir, capsys, monkeypatch):
    import shutil

    from zoo import datasets

    root = tmp_path / "ogbench"
    shutil.copytree(tiny_ogbench_dir, root)
    rebuilt = []

    def build(*args, **kwargs):  # stands for the 15-60 minute build: records the call and stops there
        rebuilt.append(args)
        raise SystemExit(9)

    monkeypatch.setattr(datasets, "build", build)
    args = ["data", "build", "cube-single-play-v0", "--episodes", "2", "--dataset-dir", str(root)]
    assert main(args) == 0 and not rebuilt
    assert "already built with seed 0" in capsys.readouterr().out
    # another seed or size, a missing or truncated file, or --force: a real build
    for other in (["--seed", "1"], ["--episodes", "3"], ["--force"]):
        with pytest.raises(SystemExit):
            main(args + other)
    (root / "cube-single-play-v0-val.npz").write_bytes(b"truncated")
    with pytest.raises(SystemExit):
        main(args)
    assert len(rebuilt) == 4


def test_list_names_each_checkpoints_data_source(tmp_path, monkeypatch, capsys):
    """`genzoo list` says whether a checkpoint's dataset was rebuilt or official, and that an online run had none."""
    import importlib
    import shutil

    resolve = importlib.import_module("hub.resolve")  # the module: `hub.resolve` is also a function's name
    source = resolve.bundled_path("genzoo/fql-ogbench-cube-single-task1-seed0")
    for name, dataset in (("offline", "keep"), ("online", None)):
        folder = tmp_path / "genzoo" / name
        folder.mkdir(parents=True)
        shutil.copy(source / "results.json", folder / "results.json")
        config = json.loads((source / "config.json").read_text())
        if dataset is None:
            config.pop("dataset", None)
        (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(resolve, "BUNDLED_DIR", tmp_path)
    assert main(["list", "--markdown"]) == 0
    rows = {line.split("|")[1].strip(" `"): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["genzoo/offline"].rstrip(" |").endswith("rebuilt")
    assert rows["genzoo/online"].rstrip(" |").endswith("none (online)")

"""The experiment scripts read run folders as `genzoo train` and `experiments/sac_baseline.py` write them."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _curve(path: Path, rows: list[tuple[int, float]], step_key: str = "time/total_timesteps") -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([step_key, "eval/score", "train/path_kl", "train/kl_ema", "train/lambda"])
        for step, score in rows:
            w.writerow([step, score, 2.0 / (1 + step), 1.0, 3.0])


def test_plot_online_bands_and_final_table(tmp_path):
    for seed, offset in enumerate((0.0, 10.0)):
        (tmp_path / f"rfm-{seed}" / "model").mkdir(parents=True)
        _curve(tmp_path / f"rfm-{seed}" / "training_log.csv", [(0, offset), (5000, 1 + offset), (10000, 5 + offset)])
        final = {"aggregate": {"mean": 20.0 + offset}, "protocol": {"episodes": 10}}
        (tmp_path / f"rfm-{seed}" / "model" / "results.json").write_text(json.dumps(final))
    # a third seed with a point the others lack (matched by step, not by row) and one still running (no log yet)
    (tmp_path / "rfm-2").mkdir()
    _curve(tmp_path / "rfm-2" / "training_log.csv", [(0, 3.0), (2500, 99.0), (5000, 4.0), (10000, 6.0)])
    (tmp_path / "rfm-3").mkdir()
    (tmp_path / "sac-0").mkdir()
    _curve(tmp_path / "sac-0" / "eval.csv", [(0, 1.0), (5000, 2.0), (10000, 3.0)])
    out = _run("plot_online.py", "--task", "gymnasium/Hopper-v5", "--runs", f"RFM={tmp_path}/rfm-*",
               f"SAC={tmp_path}/sac-*", "--out", str(tmp_path / "c.png"), "--note", "SAC: mean action")
    assert "rfm-3: no learning curve yet, skipped" in out
    # last points 5, 15, 6: mean 8.7; seeds 0-1 finished with 20 and 30 under the protocol
    assert "| RFM | 3 | 4.3 [" in out and "8.7 [" in out and "| 25.0 [-38.5, 88.5], 10 episodes (2 of 3 seeds finished) |" in out
    assert "| SAC | 1 | 1.0 (one seed) at 0 | 3.0 (one seed) at 10000 | not finished |" in out
    # seeds with disjoint evaluation steps are named, not crashed on; a seed still running names the curve's end
    for seed, rows in enumerate(([(2500, 1.0), (7500, 2.0)], [(5000, 1.0), (10000, 2.0)])):
        (tmp_path / f"odd-{seed}").mkdir()
        _curve(tmp_path / f"odd-{seed}" / "training_log.csv", rows)
    (tmp_path / "late-0").mkdir()
    _curve(tmp_path / "late-0" / "training_log.csv", [(0, 1.0), (5000, 2.0), (10000, 3.0)])
    (tmp_path / "late-1").mkdir()
    _curve(tmp_path / "late-1" / "training_log.csv", [(0, 1.0), (5000, 2.0)])
    out = _run("plot_online.py", "--task", "gymnasium/Hopper-v5", "--runs", f"ODD={tmp_path}/odd-*",
               f"LATE={tmp_path}/late-*", "--out", str(tmp_path / "d.png"), "--x-label", "gradient steps")
    assert "ODD: its seeds share no evaluation step, skipped" in out
    assert "LATE: the curve stops at 5000, where late-1 stopped" in out
    assert (tmp_path / "c.png").stat().st_size > 0

def test_plot_trust_region_writes_a_figure(tmp_path):
    (tmp_path / "trqam-0").mkdir()
    _curve(tmp_path / "trqam-0" / "training_log.csv", [(1000, 0.0), (2000, 0.0)], step_key="time/gradient_steps")
    _run("plot_trust_region.py", "--runs", f"TRQAM={tmp_path}/trqam-*", "--budget", "1.0", "--out",
         str(tmp_path / "kl.png"))
    assert (tmp_path / "kl.png").stat().st_size > 0


@pytest.mark.parametrize("published", [False, True])
@pytest.mark.parametrize("successes", [[1, 1, 0, 1]])
def test_results_table_from_run_folders(tmp_path, successes, published):
    """Rows come from run folders (``<run>/model/results.json``) or published checkpoint folders (``results.json``)."""
    for seed in range(2):
        model = tmp_path / f"run-seed{seed}" / ("" if published else "model")
        model.mkdir(parents=True)
        episodes = [{"seed": i, "return": 0.0, "success": float(s), "length": 10} for i, s in enumerate(successes)]
        (model / "results.json").write_text(json.dumps({"metric": "success", "episodes": episodes,
                                                        "latency_ms_per_action": 0.2}))
        (model / "config.json").write_text(json.dumps({"training": {"wall_time_s": 3600.0, "precision": "fp32"}}))
    out = _run("results_table.py", f"A={tmp_path}/run-seed*", "--title", "t")
    assert "| A | 2 | 75.0 |" in out and "| 1.00 | 0.20 | fp32 |" in out and "†" not in out and "‡" not in out


def test_results_table_marks_runs_across_cpu_kinds(tmp_path):
    _one_run_folder(tmp_path, [
        {"start": 0, "end": 50000, "device": "cpu:Intel(R) Xeon(R) Processor (avx512_bf16)"},
        {"start": 50000, "end": 200000, "device": "cpu:Intel(R) Xeon(R) Processor (avx512_bf16, amx_bf16)"}],
        precision="bf16")
    out = _run("results_table.py", f"A={tmp_path}/run-seed*")
    assert "| 1.00 ‡ |" in out and "| bf16 |" in out
    assert "‡ A, run-seed0: 0-50,000 on Intel(R) Xeon(R) Processor (avx512_bf16), 50,000-200,000 on" in out


def _one_run_folder(tmp_path, segments: list[dict], **training) -> None:
    """A finished run folder (4 successful episodes) whose training ran in ``segments``."""
    model = tmp_path / "run-seed0" / "model"
    model.mkdir(parents=True)
    episodes = [{"seed": i, "return": 0.0, "success": 1.0, "length": 10} for i in range(4)]
    (model / "results.json").write_text(json.dumps({"metric": "success", "episodes": episodes}))
    (model / "config.json").write_text(json.dumps({"training": {"wall_time_s": 3600.0, "segments": segments,
                                                                **training}}))


def test_results_table_marks_runs_with_gpu_steps(tmp_path):
    _one_run_folder(tmp_path, [{"start": 0, "end": 31091, "device": "cuda:NVIDIA H200"},
                               {"start": 31091, "end": 200000, "device": "cpu:Intel(R) Xeon(R) Processor"}])
    out = _run("results_table.py", f"A={tmp_path}/run-seed*")
    assert "| 1.00 † |" in out and "† A, run-seed0: 31,091 of 200,000 steps on NVIDIA H200" in out


def test_sac_baseline_writes_a_curve_in_the_shared_format(tmp_path):
    _run("sac_baseline.py", "gymnasium/Hopper-v5", "--steps", "60", "--learning-starts", "20", "--eval-every", "30",
         "--eval-episodes", "1", "--out", str(tmp_path / "sac"))
    with open(tmp_path / "sac" / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["time/total_timesteps"]) for r in rows] == [0, 30, 60] and rows[0]["eval/score"]
    run = json.loads((tmp_path / "sac" / "run.json").read_text())
    assert run["seed"] == 0 and "--out" in run["command"]
    # the final score follows the task's own protocol, as a genzoo run's results.json does
    from evaluation import get

    final = json.loads((tmp_path / "sac" / "results.json").read_text())
    assert len(final["episodes"]) == get("gymnasium/Hopper-v5").protocol.episodes
    assert run["final_score"] == final["aggregate"]["mean"]


def test_sampling_steps_table_of_a_checkpoint(tmp_path, tiny_ogbench_dir):
    from zoo.train import train

    train("momaql", "ogbench/cube-single-task1", steps=5, seed=0, out=tmp_path / "m", checkpoint_every=5,
          log_interval=5, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
          overrides={"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8})
    out = _run("sampling_steps.py", str(tmp_path / "m" / "model"), "--steps", "1", "4", "--episodes", "1",
               "--out", str(tmp_path / "s.json"))
    assert "| 1 (trained default) |" in out and "| 4 |" in out  # the cube family's zoo setting acts with 1 step
    assert "Latency measured while re-scoring, on " in out and "load average" in out
    assert set(json.loads((tmp_path / "s.json").read_text())) == {"1", "4"}
    # two seeds of one setting: one row per step count, mean over the seeds and each seed's score
    out = _run("sampling_steps.py", str(tmp_path / "m" / "model"), str(tmp_path / "m" / "model"), "--steps", "1",
               "--episodes", "2")
    row = next(line for line in out.splitlines() if line.startswith("| 1 (trained default) |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "2 seeds" in out and len(cells[3].split(", ")) == 2 and cells[4] == "2"
    out = _run("sampling_steps.py", str(tmp_path / "m" / "model"), "--steps", "1", "--episodes", "1", "--candidates", "4")
    assert "4 candidates, one kept by softmax(min Q)" in out and "| 1 (trained default) |" in out


def test_rfm_boltzmann_toy_prints_its_table():
    out = _run("rfm_boltzmann_toy.py", "--dims", "2", "--steps", "3", "--configs", "prior-K32", "policy-0.5")
    assert "| 2 | prior-K32 |" in out and "| 2 | policy-0.5 |" in out


def test_policy_probe_reports_saturation_distance_and_q(tmp_path, tiny_ogbench_dir):
    from zoo.train import train

    train("momaql", "ogbench/cube-single-task1", steps=5, seed=0, out=tmp_path / "m", checkpoint_every=5,
          log_interval=5, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
          overrides={"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8})
    out = _run("policy_probe.py", f"tiny={tmp_path / 'm' / 'model'}", "--rows", "64", "--dataset-dir",
               str(tiny_ogbench_dir))
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| dataset `cube-single-play-singletask-task1-v0` | ")
    tiny = next(line for line in lines if line.startswith("| tiny |")).split(" | ")
    assert len(tiny) == 7 and 0.0 <= float(tiny[2]) <= 1.0 and tiny[-1].strip(" |") != "-"  # Q(data) from the critic
    by_steps = _run("policy_probe.py", f"tiny={tmp_path / 'm' / 'model'}", "--rows", "64", "--dataset-dir",
                    str(tiny_ogbench_dir), "--sampling-steps", "1", "8")
    assert "| tiny, 1 step | " in by_steps and "| tiny, 8 steps | " in by_steps


def test_precision_check_compares_bf16_with_fp32_on_the_same_noise(tmp_path, tiny_ogbench_dir):
    from zoo.train import train

    train("momaql", "ogbench/cube-single-task1", steps=5, seed=0, out=tmp_path / "m", checkpoint_every=5,
          log_interval=5, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
          overrides={"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8})
    out = _run("precision_check.py", str(tmp_path / "m" / "model"), "--rows", "64", "--dataset-dir",
               str(tiny_ogbench_dir), "--sampling-steps", "1", "4")
    rows = [line.strip("| ").split(" | ") for line in out.splitlines() if line.startswith("| 1 |") or
            line.startswith("| 4 |")]
    assert len(rows) == 2
    for _steps, spread, time_inputs, autocast, ratio in rows:
        # two noises differ by far more than bf16 rounding of the same noise
        assert 0 <= float(time_inputs) < float(spread) and 0 < float(autocast) < float(spread)
        assert float(ratio) < 0.5


def test_precision_check_refuses_a_policy_without_jumps(tmp_path, tiny_ogbench_dir):
    from zoo.train import train

    train("fql", "ogbench/cube-single-task1", steps=2, seed=0, out=tmp_path / "f", checkpoint_every=2,
          log_interval=2, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
          overrides={"actor_hidden_dims": [16], "value_hidden_dims": [16], "batch_size": 8})
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "precision_check.py"), str(tmp_path / "f" / "model"),
                        "--dataset-dir", str(tiny_ogbench_dir)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "MoMa QL checkpoints" in r.stderr


def test_gradient_balance_of_each_actor_critic(tmp_path, tiny_ogbench_dir):
    from zoo.train import train

    specs = []
    for method in ("momaql", "diffusionql", "consistencyac", "fql", "diffusionbc"):
        train(method, "ogbench/cube-single-task1", steps=5, seed=0, out=tmp_path / method, checkpoint_every=5,
              log_interval=5, eval_episodes=0, dataset_dir=tiny_ogbench_dir, progress_bar=False,
              overrides={"actor_hidden_dims": [16], "batch_size": 8}
              | ({} if method == "diffusionbc" else {"value_hidden_dims": [16]}))
        specs.append(f"{method}={tmp_path / method / 'model'}")
    out = _run("gradient_balance.py", *specs[:4], "--batches", "2", "--batch-size", "16", "--dataset-dir",
               str(tiny_ogbench_dir))
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")[1:] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| checkpoint")}
    assert set(rows) == {"momaql", "diffusionql", "consistencyac", "fql"}
    # FQL's actor loss is no BC + normalised-Q pair: only the critic's slopes.
    fql = rows.pop("fql")
    assert fql[:6] == ["-"] * 6 and all(float(x) > 0 for x in fql[6:])
    for eta, bc, q, ratio, share, cosine, slope, data_slope in ([float(x) for x in row] for row in rows.values()):
        assert bc > 0 and q > 0 and abs(ratio - q / bc) < 1e-3 * ratio
        assert abs(share - eta * q / (bc + eta * q)) < 1e-3 and -1.0 <= cosine <= 1.0 and slope > 0 and data_slope > 0
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "gradient_balance.py"), specs[4], "--dataset-dir",
                        str(tiny_ogbench_dir)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "not an actor-critic" in r.stderr


def test_q_pull_toy_moves_each_policy_along_the_fixed_critic():
    out = _run("q_pull_toy.py", "--methods", "moma-rbf", "dql", "--etas", "0", "1", "--steps", "200",
               "--checkpoints", "200")
    a0 = {(row[1].strip(), row[2].strip()): float(row[3].split("/")[0]) for row in
          (line.split("|") for line in out.splitlines() if line.startswith("| moma") or line.startswith("| dql"))}
    for method in ("moma-rbf", "dql"):
        assert abs(a0[method, "0"]) < 0.15  # no pull: the data's mean, 0
        assert a0[method, "1"] > 0.3  # the linear critic rewards a₀: the Q term moves it up


def test_results_log_appends_time_stamped_sections(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from results_log import append_section
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    (tmp_path / "RESULTS-x.md").write_text("# x\n")
    append_section("RESULTS-x.md", "| a |\n|---|\n| 1 |", tmp_path)
    out = append_section("RESULTS-x.md", "| a |\n|---|\n| 2 |", tmp_path)
    text = out.read_text()
    assert text.startswith("# x\n") and text.count("\n## ") == 2 and text.endswith("| 2 |\n")
    assert text.index("| 1 |") < text.index("| 2 |")


def test_ablation_moma_tables_cover_both_tasks_and_every_method():
    r = subprocess.run(["bash", str(ROOT / "experiments" / "ablation_moma.sh")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    tables = r.stdout.split("### ")[1:]
    assert [t.splitlines()[0] for t in tables] == ["`ogbench/cube-single-task1`", "`minari/mujoco/hopper/medium-v0`"]
    for table in tables:
        labels = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
        assert labels == ["MoMa QL", "MoMa QL η 0 (BC setting)", "FQL", "Diffusion-QL", "Consistency-AC"]
    # the published BC setting's seed 0 is found (a label with '=' in it once broke the row's glob)
    assert "| MoMa QL η 0 (BC setting) | 0 |" not in tables[0]

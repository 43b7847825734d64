"""Leaderboard end to end at a tiny budget, continuing after an interruption; evaluation command."""

import csv
import json
import math
import os
from dataclasses import replace

import numpy as np
import pytest

from baselines.config import ConfigError
from baselines.evaluate import evaluate_run, main as eval_main, mean_ci95
from baselines.cli import time_left, usable_cores
from baselines.leaderboard import PRESETS, Preset, main as lb_main, parser, plan, preset_from_args, run_leaderboard
from zoo_doubles import GAME, TINY as TINY_SET

TINY = Preset(games=(GAME,), agents=("a3c", "prosocial"), seeds=2, total_steps=1024, num_worlds=2,
              num_agents=2, max_cycles=16, checkpoint_every=512, overrides=tuple(TINY_SET))


def test_leaderboard_end_to_end_and_continue(tmp_path):
    out = tmp_path / "lb"
    res = run_leaderboard(TINY, out, jobs=1, verbose=False)
    md = (out / "leaderboard.md").read_text()
    assert f"### {GAME}" in md and "| a3c | 2 |" in md and "| prosocial | 2 |" in md and "R*(1-G)" in md
    assert f"Verdict ({GAME}):" in md
    # the curves: many points per run (one per rollout that ended an episode), for every metric
    points = list(csv.DictReader(open(out / f"curves_{GAME}.csv")))
    for config in ("a3c", "prosocial"):
        for seed in ("0", "1"):
            for metric in ("collective_return", "equality", "equality_weighted_return", "sustainability"):
                steps = {p["agent_steps"] for p in points if (p["config"], p["seed"], p["metric"]) == (config, seed, metric)}
                assert len(steps) > 1, (config, seed, metric)
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    assert [(r["game"], r["config"], r["seeds"]) for r in rows] == [(GAME, "a3c", "2"), (GAME, "prosocial", "2")]
    for r in rows:
        for m in ("collective_return", "equality", "equality_weighted_return", "sustainability", "peace"):
            assert r[m] not in ("", "nan") and r[m + "_ci95"] != ""
    assert (out / f"curves_{GAME}.png").stat().st_size > 5000
    assert len(list((out / "results").glob("*.json"))) == 4
    # the reported mean is the mean of the per-seed results
    seeds = [json.loads(p.read_text())["final"]["collective_return"] for p in sorted((out / "results").glob(f"{GAME}__a3c__*.json"))]
    assert float(rows[0]["collective_return"]) == pytest.approx(sum(seeds) / 2, abs=1e-3)
    assert res["rows"][0]["collective_return"] == pytest.approx(sum(seeds) / 2)

    # an interrupted board: one run's result is missing, no temp files are left behind
    victim = out / "results" / f"{GAME}__prosocial__seed1.json"
    victim.unlink()
    other = out / "results" / f"{GAME}__a3c__seed0.json"
    before = other.stat().st_mtime_ns
    run_leaderboard(TINY, out, jobs=1, verbose=False)
    assert victim.exists() and other.stat().st_mtime_ns == before  # only the missing run was redone
    assert not [p for p in out.rglob("*.tmp")] and not list(out.glob(".*"))


def test_presets_and_cli_errors(tmp_path, capsys):
    assert PRESETS["quick"].games == ("cleanup_small", "harvest_small")
    assert all(PRESETS["quick"].budget(g) > 0 for g in PRESETS["quick"].games)
    assert PRESETS["paper"].num_agents == 5 and PRESETS["paper"].max_cycles == 1000
    assert lb_main(["--preset", "paper", "--out", str(tmp_path)]) == 2
    assert "pass --total-steps" in capsys.readouterr().err
    assert lb_main(["--preset", "demo", "--agents", "a3c,nope", "--out", str(tmp_path)]) == 2
    assert "unknown agent 'nope'" in capsys.readouterr().err
    assert lb_main(["--preset", "demo", "--games", "pong", "--out", str(tmp_path)]) == 2
    assert "unknown game 'pong'" in capsys.readouterr().err
    assert lb_main(["--preset", "demo", "--total-steps", "-10", "--out", str(tmp_path)]) == 2
    assert lb_main(["--preset", "demo", "--first-seed", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "first seed must be >= 0" in capsys.readouterr().err and not (tmp_path / "x").exists()
    # pilot seeds: --first-seed moves every run (and its files) to seeds 100, 101
    jobs = plan(preset_from_args(parser().parse_args(["--preset", "demo", "--seeds", "2", "--first-seed", "100"])), tmp_path)
    assert sorted({j["seed"] for j in jobs}) == [100, 101] and all(j["run_dir"].endswith(f"seed{j['seed']}") for j in jobs)


def test_evaluate_a_checkpoint(tmp_path, capsys):
    run_leaderboard(Preset(games=(GAME,), agents=("a3c",), seeds=1, total_steps=256, num_worlds=2, num_agents=2,
                           max_cycles=16, checkpoint_every=256, overrides=tuple(TINY_SET)), tmp_path, jobs=1, verbose=False)
    run_dir = tmp_path / "runs" / GAME / "a3c" / "seed0"
    res = evaluate_run(run_dir, episodes=5, num_worlds=2)
    assert len(res["episodes"]) == 5 and set(res["summary"]) >= {"collective_return", "equality"}
    video = tmp_path / "ep.gif"
    assert eval_main([str(run_dir), "--episodes", "3", "--video", str(video), "--greedy"]) == 0
    out = capsys.readouterr().out
    assert "| collective return |" in out and "greedy" in out
    assert video.stat().st_size > 1000
    with pytest.raises(ConfigError, match="not a training run"):
        evaluate_run(tmp_path, episodes=1)
    plot = tmp_path / "influence.png"
    assert eval_main([str(run_dir), "--episodes", "1", "--influence-plot", str(plot)]) == 2
    assert "agent 'a3c' has no influence reward" in capsys.readouterr().err and not plot.exists()


def test_influence_plot_of_an_influence_run(tmp_path, capsys):
    """ssd-eval --influence-plot: every agent's influence reward over the first episode (Fig. 5)."""
    run_leaderboard(Preset(games=(GAME,), agents=("influence_moa",), seeds=1, total_steps=256, num_worlds=2,
                           num_agents=2, max_cycles=16, checkpoint_every=256, overrides=tuple(TINY_SET)),
                    tmp_path, jobs=1, verbose=False)
    run_dir = tmp_path / "runs" / GAME / "influence_moa" / "seed0"
    res = evaluate_run(run_dir, episodes=2, num_worlds=2, record_influence=True)
    trace = np.asarray(res["influence_trace"]["influence"])
    assert trace.shape == (16, 2) and np.all(np.isfinite(trace)) and np.all(trace >= 0)  # KL: one per agent and step
    plot = tmp_path / "plots" / "influence.png"
    assert eval_main([str(run_dir), "--episodes", "2", "--influence-plot", str(plot)]) == 0
    assert plot.stat().st_size > 1000 and "influence plot:" in capsys.readouterr().out


def test_comm_plot_and_centralised_influence_plot(tmp_path, capsys):
    """ssd-eval --comm-plot (speaker consistency, instantaneous coordination) of a comm run, and
    --influence-plot of a basic-influence run; --comm-plot is refused for agents without messages."""
    run_leaderboard(Preset(games=(GAME,), agents=("influence_comm", "influence_basic"), seeds=1, total_steps=256,
                           num_worlds=2, num_agents=2, max_cycles=16, checkpoint_every=256,
                           overrides=tuple(TINY_SET) + ("influence.beta=1.0", "influence.influencers=1")), tmp_path, jobs=1,
                    verbose=False)
    comm = tmp_path / "runs" / GAME / "influence_comm" / "seed0"
    res = evaluate_run(comm, episodes=2, num_worlds=2, record_messages=True)
    symbols = np.asarray(res["messages"]["symbols"])
    assert symbols.shape == (2, 16, 2) and symbols.max() < res["messages"]["vocab_size"]
    plot = tmp_path / "comm.png"
    assert eval_main([str(comm), "--episodes", "2", "--comm-plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "speaker consistency per agent:" in out and "symbol entropy" in out and plot.stat().st_size > 1000
    basic = tmp_path / "runs" / GAME / "influence_basic" / "seed0"
    trace = np.asarray(evaluate_run(basic, episodes=2, num_worlds=2, record_influence=True)["influence_trace"]["influence"])
    # harvest's Table 1 divergence is PMI (of either sign); only agent 0, the influencer, has influence
    assert trace.shape == (16, 2) and np.isfinite(trace).all() and np.abs(trace[:, 0]).max() > 0
    assert (trace[:, 1] == 0).all()
    assert eval_main([str(basic), "--episodes", "1", "--comm-plot", str(tmp_path / "no.png")]) == 2
    assert "sends no messages" in capsys.readouterr().err and not (tmp_path / "no.png").exists()


def test_time_left_is_the_pending_runs_at_their_configs_rates(tmp_path, capsys):
    # 1,200 steps at 10/s and 600 at 5/s: 240 s of work on 2 workers
    assert time_left([("a3c", 1_200), ("moa", 600)], {"a3c": 10.0, "moa": 5.0}, 2) == ", about 2 min left"
    assert time_left([("a3c", 36_000)], {"a3c": 10.0}, 2) == ", about 60 min left"  # one run: one worker
    # a config with no finished run goes at the mean of the known rates (15/s): 20 s
    assert time_left([("new", 300)], {"a3c": 10.0, "moa": 20.0}, 2) == ", about 20 s left"
    assert time_left([], {"a3c": 10.0}, 2) == "" and time_left([("a3c", 100)], {}, 2) == ""
    run_leaderboard(replace(TINY, seeds=1), tmp_path / "lb", jobs=1, verbose=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[")]
    assert len(lines) == 2 and " left" in lines[0] and " left" not in lines[1]
    run_leaderboard(replace(TINY, seeds=1), tmp_path / "lb", jobs=8, verbose=True)  # nothing left: no workers
    assert "leaderboard: 2 runs (2 already done), 1 at a time" in capsys.readouterr().out


def test_jobs_default_to_one_run_per_usable_core():
    cores = len(os.sched_getaffinity(0))
    assert usable_cores() == cores and parser().parse_args([]).jobs == cores
    assert parser().parse_args(["--jobs", "3"]).jobs == 3


def test_mean_ci95():
    m, h = mean_ci95([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-3)
    assert mean_ci95([5.0])[0] == 5.0


def _row(config, **metrics):
    row = {"game": "g", "config": config, "seeds": 3}
    for m in ("collective_return", "equality", "equality_weighted_return", "steps_to_positive"):
        mean, half = metrics.get(m, (0.0, 1.0) if m != "steps_to_positive" else (math.nan, math.nan))
        row[m], row[f"{m}_ci95"] = mean, half
    return row


def test_verdict_names_configs_whose_interval_lies_above_a3c():
    from baselines.leaderboard import verdict

    rows = [_row("a3c", collective_return=(10.0, 2.0), steps_to_positive=(200e3, 20e3)),
            _row("prosocial", collective_return=(15.0, 2.5), steps_to_positive=(90e3, 5e3)),
            _row("inequity_aversion", collective_return=(13.0, 2.0), steps_to_positive=(170e3, 20e3)),
            _row("influence_moa", collective_return=(2.0, 1.0))]
    text = verdict(rows)
    assert "sooner than a3c (200k ± 20k agent-steps): **prosocial** (90k ± 5k)" in text
    sooner = text.split("sooner")[1]
    assert "inequity_aversion" not in sooner and "influence_moa" not in sooner  # 150k-190k overlaps; never positive
    assert "**prosocial** (15.0 ± 2.5) above a3c (10.0 ± 2.0)" in text  # 12.5 > 12
    assert "inequity_aversion" not in text.split("below")[0]  # 11 < 12: intervals overlap
    assert "below it: influence_moa" in text  # 3 < 8
    assert "R*(1-G): no config's interval lies above a3c's" in text


def test_presets_log_many_points_per_run():
    """Every preset's budget spans many rollouts (one curve point each), with its own PPO settings."""
    from baselines.config import load_agent_config

    for name, preset in PRESETS.items():
        for game in preset.games:
            cfg = load_agent_config("a3c", game, list(preset.overrides))
            agents = preset.num_agents or {"cleanup_small": 3, "harvest_small": 3, "cleanup": 5, "harvest": 5}[game]
            rollout = cfg.ppo.n_steps * preset.num_worlds * agents
            budget = preset.budget(game) or 5 * 10**7
            assert budget / rollout >= 20, (name, game, budget / rollout)


def test_per_game_budgets(tmp_path):
    """A preset's game_steps give a game its own budget; --total-steps sets one budget for all."""
    preset = Preset(games=("cleanup_small", "harvest_small"), agents=("a3c",), seeds=1, total_steps=1000,
                    game_steps={"harvest_small": 3000}, num_worlds=2)
    budgets = {j["game"]: j["total_steps"] for j in plan(preset, tmp_path / "b")}
    assert budgets == {"cleanup_small": 1000, "harvest_small": 3000}
    assert not (tmp_path / "b").exists()  # planning writes nothing
    cli = preset_from_args(parser().parse_args(["--preset", "quick", "--total-steps", "7e5"]))
    assert {cli.budget(g) for g in cli.games} == {700_000}


#: TrainArgs fields that change where and how a run is logged, not what it learns
BOOKKEEPING = {"run_dir", "checkpoint_every", "keep_checkpoints", "fresh", "progress", "tensorboard"}


@pytest.mark.parametrize("name", ["demo", "quick", "social"])
def test_one_ssd_train_command_retrains_a_small_map_leaderboard_row(tmp_path, name):
    """``ssd-train --agent A --game G --seed S --total-steps B`` with every other flag left at its
    default trains exactly what the small-map presets train (the README says so)."""
    from baselines.train import parser as train_parser

    jobs = plan(PRESETS[name], tmp_path / "lb")
    assert jobs
    for job in jobs:
        cli = train_parser().parse_args(["--agent", job["agent"], "--game", job["game"], "--seed", str(job["seed"]),
                                         "--total-steps", str(job["total_steps"])])
        differs = {k: (job[k], v) for k, v in vars(cli).items() if k not in BOOKKEEPING and job[k] != v}
        assert not differs, (job["agent"], job["game"], differs)


def test_eval_leaderboard_plays_every_run_sampled_and_greedy(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_leaderboard.py"
    spec = importlib.util.spec_from_file_location("eval_leaderboard", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit):  # no runs yet: a clear error, nothing written
        script.main([str(tmp_path / "lb"), "--out", str(tmp_path / "eval.md")])
    assert "holds no training runs" in capsys.readouterr().err and not (tmp_path / "eval.md").exists()
    run_leaderboard(TINY, tmp_path / "lb", jobs=1, verbose=False)
    for bad, message in ((["--episodes", "0"], "episodes must be >= 1, got 0"), (["--seed", "-1"], "seed must be >= 0, got -1")):
        with pytest.raises(SystemExit):  # evaluate_run's own checks, as one error line
            script.main([str(tmp_path / "lb"), *bad, "--out", str(tmp_path / "eval.md")])
        assert message in capsys.readouterr().err and not (tmp_path / "eval.md").exists()
    rows = script.evaluate_board(tmp_path / "lb", episodes=2, seed=3)
    assert sorted((r["config"], r["seed"], r["mode"]) for r in rows) == sorted(
        (c, s, m) for c in ("a3c", "prosocial") for s in (0, 1) for m in ("sampled", "greedy"))
    # each row is what ssd-eval reports for that run and mode
    one = evaluate_run(tmp_path / "lb" / "runs" / GAME / "prosocial" / "seed1", episodes=2, seed=3, deterministic=True)
    row = next(r for r in rows if (r["config"], r["seed"], r["mode"]) == ("prosocial", 1, "greedy"))
    assert row["collective_return"] == one["summary"]["collective_return"][0]
    text = script.table(rows, episodes=2)
    assert f"### {GAME}" in text and text.count("| greedy | 2 |") == 2 and text.count("| sampled | 2 |") == 2

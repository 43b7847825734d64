"""The Box Trapped reproduction script end to end at a tiny budget (the real runs are benchmarks)."""

import csv
import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")


@pytest.fixture(scope="module")
def repro():
    # an importable module (not loaded from a file path): its training pool's spawned workers import it
    sys.path.insert(0, BENCHMARKS)
    try:
        yield importlib.import_module("box_trapped_repro")
    finally:
        sys.path.remove(BENCHMARKS)


def test_repro_trains_evaluates_and_diagnoses(repro, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert repro.main(["--total-steps", "800", "--seeds", "1", "--episodes", "2", "--num-worlds", "8",
                       "--jobs", "1", "--runs", str(runs), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "box_trapped_table.csv")))
    assert [(r["config"], r["seed"]) for r in rows] == [("a3c", "0"), ("influence_moa", "0"), ("influence_basic", "0")]
    for r in rows:
        for mode in ("sampled", "greedy"):
            assert 0.0 <= float(r[f"open_share_{mode}"]) <= 1.0
    assert "| **influence_moa mean** | 1 seeds |" in (out / "box_trapped_table.md").read_text()
    assert (out / "box_trapped_open_step.png").stat().st_size > 5000

    diag = json.loads((out / "box_trapped_diagnose.json").read_text())
    assert [(d["config"], d["seed"]) for d in diag] == [("a3c", 0), ("influence_moa", 0), ("influence_basic", 0)]
    for d in diag:
        for when in ("in_opening_step", "after_opening"):
            assert d[f"true_influence_of_opening_{when}_nats"] >= 0
            for key in (f"trapped_policy_{when}", f"trapped_policy_box_shut_{when}"):
                assert sum(d[key]) == pytest.approx(1.0, abs=0.01) and len(d[key]) == len(d["actions"])
        # 100-step episodes: at most one apple per step for each agent, at most 0.1 per step for
        # pushing against the shut box (the zoo's Box Trapped)
        for key in ("influencer_return_opened", "influencer_return_shut", "trapped_return_opened"):
            assert -10 <= d[key] <= 100
    # only the centralised agent's trapped learner sees the influencer's action in the step itself;
    # the others' (in the dark, at the first step) see the same in both halves
    for d in diag[:2]:
        assert d["true_influence_of_opening_in_opening_step_nats"] == pytest.approx(0.0, abs=1e-5)
    assert "moa_influence_reward_opening" in diag[1] and "moa_influence_reward_opening" not in diag[0]
    assert diag[2]["centralised_influence_reward_opening"] >= 0 and "moa_influence_reward_opening" not in diag[2]

    # a second call finds the finished runs and does not train again
    summary = runs / "a3c" / "seed0" / "summary.json"
    before = summary.stat().st_mtime_ns
    repro.main(["--phase", "train", "--total-steps", "800", "--seeds", "1", "--num-worlds", "8", "--jobs", "1",
                "--runs", str(runs)])
    assert summary.stat().st_mtime_ns == before


def test_repro_trains_only_the_configs_asked_for(repro, tmp_path):
    runs = tmp_path / "runs"
    repro.main(["--phase", "train", "--configs", "a3c", "--total-steps", "400", "--seeds", "1",
                "--num-worlds", "8", "--jobs", "1", "--runs", str(runs)])
    assert (runs / "a3c" / "seed0" / "summary.json").exists() and not (runs / "influence_moa").exists()

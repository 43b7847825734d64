"""Zoo configs: every shipped config resolves for every game; bad configs fail with clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from baselines.config import GAMES, ConfigError, load_agent_config, zoo_names
from baselines.train import TrainArgs, main as train_main, validate_args

ROOT = Path(__file__).resolve().parents[1]
ZOO = ["a3c", "visible_actions", "prosocial", "inequity_aversion", "influence_moa", "influence_basic", "influence_comm",
       "comm_baseline"]


def test_zoo_ships_the_eight_configs():
    assert set(ZOO) <= set(zoo_names())


@pytest.mark.parametrize("agent", ZOO)
@pytest.mark.parametrize("game", GAMES)
def test_every_config_resolves_for_every_game(agent, game):
    cfg = load_agent_config(agent, game)
    assert cfg.name == agent
    assert cfg.network.conv_channels == 6 and cfg.network.fc_sizes == [32, 32] and cfg.network.lstm_hidden_size == 128
    assert cfg.ppo.lr_end <= cfg.ppo.lr_init


def test_paper_values_table3_influence_moa():
    c = load_agent_config("influence_moa", "cleanup")
    assert (c.ppo.ent_coef, c.ppo.lr_init, c.ppo.lr_end) == (0.00176, 0.00123, 0.000012)
    assert (c.influence.beta, c.influence.moa_loss_weight, c.influence.curriculum_fraction) == (0.620, 15.007, 0.13)
    assert c.influence.divergence == "kl" and c.influence.train_only_visible is True
    h = load_agent_config("influence_moa", "harvest_small")  # small maps inherit their base game
    assert (h.ppo.ent_coef, h.influence.beta, h.influence.moa_loss_weight) == (0.00223, 2.521, 10.911)


def test_paper_values_tables_1_and_2_centralised_agents():
    b = load_agent_config("influence_basic", "cleanup")
    assert (b.ppo.ent_coef, b.ppo.lr_init, b.ppo.lr_end) == (0.000248, 0.00107, 0.000042)
    assert (b.influence.beta, b.influence.divergence, b.influence.influencers, b.influence.influencee_reward) == \
        (0.146, "jsd", 1, True)
    h = load_agent_config("influence_basic", "harvest")
    assert (h.influence.beta, h.influence.divergence, h.influence.influencers, h.influence.influencee_reward) == \
        (0.224, "pmi", 3, False)
    assert load_agent_config("influence_basic", "harvest_small").influence.influencers == 2  # 3 agents there
    c = load_agent_config("influence_comm", "cleanup_small")
    assert (c.influence.beta, c.influence.alpha, c.ppo.ent_coef, c.ppo.lr_init) == (2.752, 0.0, 0.00305, 0.00249)
    assert (c.communication.vocab_size, c.communication.ent_coef, c.communication.embedding) == (9, 0.000789, 32)
    h = load_agent_config("influence_comm", "harvest")
    assert (h.influence.beta, h.influence.alpha, h.communication.vocab_size, h.communication.embedding) == (4.825, 1.0, 7, 16)
    base = load_agent_config("comm_baseline", "harvest")
    assert (base.reward, base.influence.beta, base.ppo.ent_coef, base.ppo.lr_init) == ("influence_comm", 0.0, 0.000174, 0.00137)
    assert base.communication.vocab_size == 7


def test_paper_values_table1_and_prosocial():
    v = load_agent_config("visible_actions", "harvest")
    assert (v.ppo.ent_coef, v.ppo.lr_init, v.ppo.lr_end, v.policy_inputs) == (0.00184, 0.00215, 0.000013, "rgb+actions")
    a = load_agent_config("a3c", "harvest")
    assert (a.ppo.ent_coef, a.ppo.lr_init, a.ppo.lr_end, a.policy_inputs, a.reward) == (0.000687, 0.00136, 0.000028, "rgb", "none")
    assert load_agent_config("prosocial", "cleanup").prosocial.eta == 0.85


def test_overrides_and_numeric_strings():
    c = load_agent_config("a3c", "cleanup", ["ppo.ent_coef=0.01", "sharing=shared", "ppo.n_steps=1e2"])
    assert c.ppo.ent_coef == 0.01 and c.sharing == "shared" and c.ppo.n_steps == 100


def test_unknown_agent_name():
    with pytest.raises(ConfigError, match=r"unknown agent 'a4c'.*a3c"):
        load_agent_config("a4c", "cleanup")


def test_unknown_game():
    with pytest.raises(ConfigError, match=r"unknown game 'cleanupp'"):
        load_agent_config("a3c", "cleanupp")


def test_negative_budget():
    with pytest.raises(ConfigError, match="total_steps must be a positive"):
        validate_args(TrainArgs(total_steps=-5))


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nppo: [1, 2\n")
    with pytest.raises(ConfigError, match="malformed config file"):
        load_agent_config(str(bad), "cleanup")


@pytest.mark.parametrize(
    "body, message",
    [
        ("ppo: {entcoef: 0.1}", r"cfg\.yaml: unknown key 'entcoef' in ppo; valid keys there: n_steps"),
        ("ppo: {n_steps: many}", r"ppo\.n_steps: Value 'many' of type 'str' could not be converted to Integer"),
        ("reward: selfish", r"reward: Invalid value 'selfish', expected one of \['none', 'prosocial'"),
        ("games: {cleanup: {ppo: {lr_init: 0.001, lr_end: 0.01}}}", r"lr_end.*must not exceed"),
        ("ppo: {gamma: 1.5}", r"ppo\.gamma: must be in \[0, 1\]"),
        ("games: {cleanupp: {}}", r"games\.cleanupp: unknown game"),
        ("- just\n- a list\n", r"expected a mapping at the top"),
        ("colour: red", r"unknown key 'colour' at the top level"),
        ("influence: {train_every: 12}", r"influence: train_every \(12\) must be a multiple of bptt \(8\)"),
        ("influence: {train_iters: 0}", r"influence\.train_iters: must be >= 1"),
    ],
)
def test_invalid_config_files(tmp_path, body, message):
    path = tmp_path / "cfg.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_agent_config(str(path), "cleanup")


def test_user_config_copy_is_loadable(tmp_path):
    """A user copies a shipped config, edits it, and trains from the file."""
    src = (ROOT / "baselines" / "configs" / "prosocial.yaml").read_text()
    path = tmp_path / "my_prosocial.yaml"
    path.write_text(src.replace("reward: prosocial", "reward: prosocial\nprosocial: {eta: 0.3}"))
    assert load_agent_config(str(path), "harvest").prosocial.eta == 0.3
    assert load_agent_config(str(path), "harvest").ppo.ent_coef == 0.000687  # the game's tuned values apply


def test_cli_reports_errors_cleanly(capsys):
    assert train_main(["--agent", "nope", "--game", "cleanup_small", "--no-progress"]) == 2
    assert "unknown agent 'nope'" in capsys.readouterr().err
    assert train_main(["--agent", "a3c", "--game", "cleanup_small", "--total-steps", "-1"]) == 2
    assert "total_steps must be a positive" in capsys.readouterr().err


def test_console_entry_point_module_runs():
    out = subprocess.run([sys.executable, "-m", "baselines.train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "--total-steps" in out.stdout


@pytest.mark.parametrize("budget", [10**5, 5 * 10**7, 10**9])
def test_influence_curriculum_is_a_fraction_of_any_budget(budget):
    """One rule for the lr and the influence weight: both follow the run's own budget, so any
    --total-steps ends with beta at full value (the ramp ends within the run's env steps)."""
    from baselines.envs import influence_curriculum_env_steps
    from baselines.leaderboard import PRESETS

    for game in ("cleanup", "harvest"):
        cfg = load_agent_config("influence_moa", game, list(PRESETS["paper"].overrides))
        ramp = influence_curriculum_env_steps(cfg, budget, num_agents=5)
        assert 0 < ramp <= budget / 5


def test_influence_section_is_the_wrappers_options():
    """The zoo's influence fields are wrappers.InfluenceOptions' own names, passed straight through;
    only the curriculum fraction, the recorded loss weight and the basic agent's two are the zoo's."""
    from dataclasses import asdict, fields

    from wrappers import InfluenceOptions

    cfg = load_agent_config("influence_moa", "harvest", ["ppo.lr_init=0.002"])
    zoo, wrapper = set(asdict(cfg.influence)), {f.name for f in fields(InfluenceOptions)}
    zoo_own = {"curriculum_fraction", "moa_loss_weight", "influencers", "influencee_reward"}
    assert zoo - wrapper == zoo_own and wrapper - zoo == {"curriculum_steps", "seed"}
    opts = cfg.influence_options(curriculum_steps=5, seed=1)
    assert (opts.beta, opts.lr, opts.train_every, opts.train_iters, opts.curriculum_steps) == (2.521, 0.002, 16, 1, 5)
    assert load_agent_config("influence_moa", "box_trapped").influence.lr == 0.005  # the table's own value

"""Evaluate a trained run: ``ssd-eval`` / ``python -m baselines.evaluate``.

    ssd-eval runs/cleanup_small/a3c/seed0 --episodes 20 --video episode.gif

Loads the run's newest checkpoint (or ``--checkpoint DIR``), plays ``--episodes`` episodes with the
trained learners (sampled actions; ``--greedy`` for argmax), prints a Markdown table of the social
outcome metrics (mean and 95% interval over episodes) and optionally writes a video of the first
world's first episode (``.gif``; ``.mp4`` needs imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

from baselines.checkpoint import atomic_write_json, latest_checkpoint, load_state, restore_learners, restore_moa
from baselines.cli import integer, report
from baselines.config import ConfigError, from_dict
from baselines.centralised import TeamView, make_social
from baselines.envs import METRIC_TITLES, METRICS, base_of, influence_curriculum_env_steps, influence_wrapper, make_env
from baselines.lockstep import empty_actions, learner_obs, make_learners, policy_step, put_actions, team_roles
from baselines.curves import episode_record
from baselines.eval_plots import communication_measures, plot_communication, plot_influence
from ssd_gym.metrics import INFO_KEY
from ssd_gym.rendering import check_video_path, draw_world, write_video

# two-sided 95% Student-t quantiles for df = 1..30 (no scipy dependency)
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(n: int) -> float:
    """Two-sided 95% Student-t quantile for the mean of ``n >= 2`` values."""
    return _T95[n - 2] if n - 1 <= len(_T95) else 1.96


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (nan half-width for fewer than 2 values)."""
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(t95(len(v)) * v.std(ddof=1) / math.sqrt(len(v)))


#: the run.json arguments that restore_players rebuilds the env from
RUN_ARGS = ("game", "num_worlds", "total_steps", "num_agents", "max_cycles")


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None):
    """(run.json contents, resolved config, checkpoint dir, checkpoint state) of a training run;
    ConfigError if ``run_dir`` is not a run with a complete checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir} does not exist" if not run_dir.exists() else f"{run_dir} is not a directory")
    info_path = run_dir / "run.json"
    if not info_path.exists():
        raise ConfigError(f"{run_dir} is not a training run directory (no run.json)")
    try:
        info = json.loads(info_path.read_text())
        cfg = from_dict(info["config"], source=str(info_path))
        missing = [k for k in RUN_ARGS if k not in info["args"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{info_path} is damaged ({type(exc).__name__}: {exc})") from None
    if missing:
        raise ConfigError(f"{info_path} is damaged (args lack {', '.join(missing)})")
    ckpt = Path(checkpoint) if checkpoint else latest_checkpoint(run_dir)
    if checkpoint and not (ckpt / "state.json").exists():
        raise ConfigError(f"--checkpoint {checkpoint} is not a complete checkpoint directory (no state.json)")
    if ckpt is None or not (ckpt / "state.json").exists():
        raise ConfigError(f"{run_dir} has no complete checkpoint yet")
    return info, cfg, ckpt, load_state(ckpt)


def check_output_file(path: str | Path, flag: str) -> Path:
    """A file written at the end of the work (``--video``, ``--json``): refuse up front a path that
    is a directory or lies under a file or an unwritable directory, so the work is not wasted.
    Missing parent directories are fine (they are created when the file is written)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory")
    parent = next(a for a in p.absolute().parents if a.exists())  # the nearest existing ancestor
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {parent} is not writable")
    return p


def check_video(path: str | Path) -> None:
    """``--video``: a suffix (and, for .mp4, a codec) ssd_gym can write, at a writable place."""
    try:
        check_video_path(path)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"--video {path}: {exc}") from None
    check_output_file(path, "--video")


@dataclass
class Players:
    """A run's trained learners and an env to play them in (its game, reward wrappers and MOA restored)."""

    venv: Any
    infl: Any  # the InfluenceRewardVecEnv in the stack, or None
    roles: list[Any]
    learners: list[Any]
    social: Any = None  # the centralised influence (baselines.centralised), or None

    @property
    def groups(self) -> list[np.ndarray]:
        return [r.group for r in self.roles]

    def initial_lstm_states(self) -> list[Any]:
        return [learner._last_lstm_states for learner in self.learners]

    def act(self, obs: Any, lstm: list[Any], starts: list[np.ndarray], actions: np.ndarray, probs: np.ndarray,
            deterministic: bool = False, edit: Any = None) -> None:
        """Every learner acts on its own slots of ``obs`` (in learner order, as in training): fills
        ``actions`` and, for the action learners, ``probs`` (per slot) and replaces its entry of
        ``lstm``; ``starts[k]``: learner k's episode-start flags. ``edit(k, actions)``, if given,
        replaces learner k's sampled actions before anyone sees them (experiments that force a move)."""
        view = TeamView(learner_obs(self.learners, self.groups, obs), list(lstm), list(starts))
        for k, (learner, role) in enumerate(zip(self.learners, self.roles)):
            obs_t = obs_as_tensor(view.obs[k], learner.device)
            act, _, _, lstm[k], p = policy_step(learner.policy, obs_t, lstm[k],
                                                th.tensor(starts[k], dtype=th.float32), deterministic=deterministic)
            act = act.cpu().numpy() if edit is None else np.asarray(edit(k, act.cpu().numpy()), dtype=np.int64)
            put_actions(actions, role, act)
            if role.column in (None, 0):
                probs[role.group] = p.cpu().numpy()
            if self.social is not None:
                self.social.acted(k, act, p, view)

    def stepped(self, obs: Any, lstm: list[Any], rewards: np.ndarray, dones: np.ndarray, infos: list[dict]) -> None:
        """After the env step: the centralised influence of the step into ``infos`` (as in training)."""
        if self.social is not None:
            after = TeamView(learner_obs(self.learners, self.groups, obs), list(lstm),
                             [np.asarray(dones[g], dtype=bool) for g in self.groups])
            self.social.stepped(rewards, dones, infos, after)


def restore_players(loaded: tuple, num_worlds: int, seed: int, learner_seed: int | None = None) -> Players:
    """Rebuild a run's env (``num_worlds`` worlds seeded with ``seed``) and its learners from what
    ``load_run`` returned; the learners are built with ``learner_seed`` (default ``seed``)."""
    info, cfg, ckpt, state = loaded
    a = info["args"]
    venv = make_env(cfg, a["game"], num_worlds, seed, a["total_steps"], num_agents=a["num_agents"], max_cycles=a["max_cycles"])
    infl = influence_wrapper(venv)
    restore_moa(ckpt, infl, state)
    n_agents = int(venv.num_agents)
    roles = team_roles(cfg, num_worlds, n_agents, venv.action_space)
    learners = make_learners(cfg, venv.observation_space, roles, seed=seed if learner_seed is None else learner_seed)
    restore_learners(ckpt, learners, state)
    for learner in learners:
        learner.policy.set_training_mode(False)
    social = make_social(cfg, learners, num_worlds, n_agents,
                         influence_curriculum_env_steps(cfg, a["total_steps"], n_agents))
    if social is not None:
        social.global_step = int(state.get("influence_global_step", 0))
    return Players(venv, infl, roles, learners, social)


def evaluate_run(run_dir: str | Path, episodes: int = 10, seed: int = 12345, deterministic: bool = False,
                 num_worlds: int | None = None, checkpoint: str | Path | None = None,
                 video: str | Path | None = None, record_influence: bool = False,
                 record_messages: bool = False) -> dict[str, Any]:
    """Play ``episodes`` episodes with a run's checkpoint; returns per-episode records and a summary.

    ``record_influence``: every agent's influence reward over one first-round episode
    (``influence_trace``); ``record_messages`` (communication agents): every world's first episode
    of actions, symbols and influence, ``[worlds, T, N]`` each (``messages``).

    Every argument is checked before anything is played (ConfigError naming the problem)."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if num_worlds is not None and num_worlds < 1:
        raise ConfigError(f"num_worlds must be >= 1, got {num_worlds}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if video:
        check_video(video)
    info, cfg, ckpt, state = loaded = load_run(run_dir, checkpoint)
    if record_influence and not cfg.reward.startswith("influence"):
        raise ConfigError(f"--influence-plot: the run's agent {cfg.name!r} has no influence reward to plot")
    if record_messages and cfg.reward != "influence_comm":
        raise ConfigError(f"--comm-plot: the run's agent {cfg.name!r} sends no messages (influence_comm and "
                          "comm_baseline do)")
    a = info["args"]
    num_worlds = int(num_worlds or min(episodes, a["num_worlds"]))
    try:
        players = restore_players(loaded, num_worlds, seed)
    except FileNotFoundError as exc:  # a learner file of the checkpoint is missing
        raise ConfigError(str(exc)) from None
    venv, infl, groups = players.venv, players.infl, players.groups
    n_agents = int(venv.num_agents)

    base = base_of(venv)
    frames: list[np.ndarray] = []
    obs = venv.reset()
    lstm = players.initial_lstm_states()
    starts = [np.ones(len(g), dtype=bool) for g in groups]
    actions_all = empty_actions(venv)
    probs_all = np.zeros((venv.num_envs, players.roles[0].action_space.n), dtype=np.float32)
    played: list[tuple[np.ndarray, np.ndarray]] = []  # per step of the first round: actions [S, 2], influence [S]
    records: list[dict[str, Any]] = []
    trace: list[list[float]] = []  # per step: every slot's influence reward
    first_episode_done = False
    if video:
        frames.append(draw_world(base.engine, 0, 8))
    while len(records) < episodes:
        players.act(obs, lstm, starts, actions_all, probs_all, deterministic=deterministic)
        if infl is not None:
            venv.set_action_probs(probs_all)
        obs, rewards, dones, infos = venv.step(actions_all)
        players.stepped(obs, lstm, rewards, dones, infos)
        if record_messages and not first_episode_done:
            played.append((actions_all.copy(), np.array([i.get("influence_reward", math.nan) for i in infos])))
        if record_influence and not first_episode_done and "influence_reward" in infos[0]:
            trace.append([float(infos[s]["influence_reward"]) for s in range(venv.num_envs)])
        if video and not first_episode_done and not dones[0]:
            frames.append(draw_world(base.engine, 0, 8))
        for k, group in enumerate(groups):
            starts[k] = np.asarray(dones[group], dtype=bool)
        for slot in np.flatnonzero(np.asarray(dones)[::n_agents]) * n_agents:
            ep = infos[slot][INFO_KEY]
            rets = [float(infos[slot + i][INFO_KEY]["agent_return"]) for i in range(n_agents)]
            rec = episode_record(ep, rets)
            rec["returns"] = rets
            rec["world"] = int(slot // n_agents)
            rec["first_round"] = not first_episode_done
            records.append(rec)
        if dones[0]:
            first_episode_done = True
    records = records[:episodes]
    venv.close()
    result: dict[str, Any] = {
        "run_dir": str(run_dir), "checkpoint": str(ckpt), "agent": cfg.name, "game": a["game"],
        "agent_steps": state["agent_steps"], "episodes": records, "deterministic": deterministic,
        "summary": summarize(records),
    }
    if record_influence and trace:
        # every agent's influence reward over one first-round episode ([T, N]): the one in which the
        # box was opened earliest if any (Fig. 5 of the paper), else world 0's
        first = [r for r in records if r.get("first_round")]
        opened = [r for r in first if r.get("box_open_step", "") != ""]
        pick = min(opened, key=lambda r: r["box_open_step"]) if opened else (first[0] if first else {"world": 0})
        arr = np.asarray(trace).reshape(len(trace), -1, n_agents)
        result["influence_trace"] = {"influence": arr[:, pick["world"]].tolist(), "world": pick["world"],
                                     "open_step": pick.get("box_open_step") if pick.get("box_open_step", "") != "" else None}
    if record_messages and played:
        shape = (len(played), num_worlds, n_agents)  # the first round: every world's first episode
        result["messages"] = {
            "actions": np.stack([a[:, 0] for a, _ in played]).reshape(shape).swapaxes(0, 1).tolist(),
            "symbols": np.stack([a[:, 1] for a, _ in played]).reshape(shape).swapaxes(0, 1).tolist(),
            "influence": np.stack([c for _, c in played]).reshape(shape).swapaxes(0, 1).tolist(),
            "num_actions": int(players.roles[0].action_space.n), "vocab_size": int(cfg.communication.vocab_size),
        }
    if video:
        result["video"] = _write_video(frames, str(video))
    return result


def summarize(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Mean and 95% half-width over episodes of each metric present."""
    out = {}
    for key in (*METRICS, "box_opened", "box_open_step"):
        vals = [r[key] for r in records if r.get(key, "") != ""]
        if vals:
            out[key] = mean_ci95([float(v) for v in vals])
    return out


def markdown_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [f"{result['agent']} on {result['game']} ({result['agent_steps']} agent-steps), "
             f"{len(result['episodes'])} episodes, {'greedy' if result['deterministic'] else 'sampled'} actions", "",
             "| metric | mean | 95% interval |", "|---|---|---|"]
    for key, (m, h) in s.items():
        lines.append(f"| {METRIC_TITLES.get(key, key)} | {m:.3f} | {'±%.3f' % h if not math.isnan(h) else 'n/a'} |")
    return "\n".join(lines)


def _write_video(frames: list[np.ndarray], path: str, fps: int = 8) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # check_output_file allowed missing parents
    return write_video(frames, path, fps=fps)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssd-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a training run directory (holds run.json and checkpoints/)")
    p.add_argument("--checkpoint", default=None, help="a checkpoint directory (default: the newest)")
    p.add_argument("--episodes", type=integer, default=10)
    p.add_argument("--seed", type=integer, default=12345)
    p.add_argument("--num-worlds", type=integer, default=None)
    p.add_argument("--greedy", action="store_true", help="argmax actions instead of sampling")
    p.add_argument("--video", default=None, help="write the first episode to this .gif / .mp4")
    p.add_argument("--json", default=None, help="also write all episode records to this JSON file")
    p.add_argument("--influence-plot", default=None, metavar="PNG",
                   help="influence agents: plot every agent's influence reward over the first episode")
    p.add_argument("--comm-plot", default=None, metavar="PNG",
                   help="communication agents: speaker consistency and instantaneous coordination of every "
                        "world's first episode, printed and plotted")
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)  # bad flags and numbers: argparse prints the error and exits 2
    th.set_num_threads(1)
    try:
        for flag, path in (("--json", ns.json), ("--influence-plot", ns.influence_plot), ("--comm-plot", ns.comm_plot)):
            if path:
                check_output_file(path, flag)
        res = evaluate_run(ns.run_dir, episodes=ns.episodes, seed=ns.seed, deterministic=ns.greedy,
                           num_worlds=ns.num_worlds, checkpoint=ns.checkpoint, video=ns.video,
                           record_influence=bool(ns.influence_plot), record_messages=bool(ns.comm_plot))
    except ConfigError as exc:
        return report("ssd-eval", exc)
    print(markdown_table(res))
    if res.get("video"):
        print(f"\nvideo: {res['video']}")
    if ns.influence_plot:
        print(f"influence plot: {plot_influence(res, ns.influence_plot)}")
    if ns.comm_plot:
        res["communication"] = measures = communication_measures(res)
        print("\nspeaker consistency per agent: " + ", ".join(f"{v:.3f}" for v in measures["speaker_consistency"])
              + "; symbol entropy / log vocab: " + ", ".join(f"{v:.3f}" for v in measures["symbol_entropy"]))
        for name in ("symbol_action_ic", "action_action_ic"):
            print(f"{name.replace('_', ' ')} (max over pairs): {measures[name]:.4f} nats; at influential moments "
                  f"({measures['influential_share']:.1%} of steps): {measures[name + '_influential']:.4f}")
        print(f"communication plot: {plot_communication(res, measures, ns.comm_plot)}")
    if ns.json:
        atomic_write_json(ns.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())

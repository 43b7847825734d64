"""Our per-episode social metrics through RLlib's metrics logger.

:class:`SSDMetricsCallback` reads ``info["episode_metrics"]`` (:mod:`ssd_gym.metrics`), which every
ssd-gym game puts on its episode's last step, and logs each value under ``ssd/<name>`` on the env
runner's ``MetricsLogger``, averaged over the same window of recent episodes as RLlib's own
``episode_return_mean``. They appear in ``algo.train()``'s results as
``result["env_runners"]["ssd"]["<name>"]`` (TensorBoard: ``env_runners/ssd/<name>``):

* ``collective_return``, ``equality`` (1 - Gini), ``equality_weighted_return`` (R*(1-G)),
  ``sustainability``, ``peace``, ``gini``: the game's extrinsic rewards, whatever reward wrappers
  the agents train on;
* ``apples_eaten``, ``beams_fired``, ``hits_taken``: summed over agents;
* Box Trapped: ``box_opened`` (the fraction of episodes) and ``box_open_step`` (over the episodes
  in which the box was opened);
* with the influence wrapper: ``influence_reward`` (the mean unweighted influence per agent-step),
  ``influence_weight`` (the curriculum weight at the episode's end), ``moa_accuracy``, ``moa_loss``.
"""

from __future__ import annotations

import math

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

from ssd_gym.metrics import INFO_KEY

PREFIX = "ssd"
SOCIAL = ("collective_return", "equality", "equality_weighted_return", "sustainability", "peace", "gini")
SUMMED = ("apples_eaten", "beams_fired", "hits_taken")
INFLUENCE = ("influence_weight", "moa_accuracy", "moa_loss")


def episode_social_metrics(last_infos: dict, all_infos: dict | None = None) -> dict[str, float]:
    """The values :class:`SSDMetricsCallback` logs for one episode, from its agents' last-step infos
    (``{agent: info}``) and optionally every step's (``{agent: [info, ...]}``, for the influence
    reward)."""
    m = next((i[INFO_KEY] for i in last_infos.values() if isinstance(i, dict) and INFO_KEY in i), None)
    if m is None:
        return {}
    out = {k: float(m[k]) for k in SOCIAL if k in m}
    out.update({k: float(np.sum(m[k])) for k in SUMMED if k in m})
    if "box_opened" in m:
        out["box_opened"] = float(bool(m["box_opened"]))
        if m["box_opened"]:
            out["box_open_step"] = float(m["box_open_step"])
    first = next(iter(last_infos.values()))
    for k in INFLUENCE:
        if k in first:
            vals = [float(i[k]) for i in last_infos.values() if k in i]
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                out[k] = float(np.mean(vals))
    if all_infos:
        vals = [float(i["influence_reward"]) for infos in all_infos.values() for i in infos
                if isinstance(i, dict) and "influence_reward" in i]
        if vals:
            out["influence_reward"] = float(np.mean(vals))
    return out


class SSDMetricsCallback(RLlibCallback):
    """Logs each finished episode's social metrics (module docstring) on the env runner."""

    def on_episode_end(self, *, episode, env_runner=None, metrics_logger=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        last = episode.get_infos(-1)
        everything = None
        if any(isinstance(i, dict) and "influence_reward" in i for i in last.values()):
            everything = episode.get_infos()
        values = episode_social_metrics(last, everything)
        cfg = getattr(env_runner, "config", None)
        window = 100
        if cfg is not None:
            window = max(1, math.ceil(cfg.metrics_num_episodes_for_smoothing / (cfg.num_env_runners or 1)))
        for k, v in values.items():
            metrics_logger.log_value((PREFIX, k), v, reduce="mean", window=window)

"""ssd-gym on Ray RLlib (new API stack): the same games, reward wrappers and zoo agents, from one
machine to a cluster. Needs the ``rllib`` extra: ``pip install "ssd-gym[rllib]"``.

* ``env``: every game, under any stack of our reward wrappers, as an RLlib ``MultiAgentEnv``
  (registered as ``"ssd_gym"`` and ``"ssd_gym/<game>"``);
* ``module``: the paper's network (conv 3x3x6, FC 32-32, LSTM 128) as a ``TorchRLModule``;
* ``metrics``: the per-episode social metrics through RLlib's metrics logger (a callback);
* ``algo``: a zoo config as a ``PPOConfig`` (independent or shared modules);
* ``train``: the ``ssd-rllib`` command (env runners, GPU learners, checkpoints, resume, ``--address``).

The games (``ssd_gym``) and the wrappers know nothing of Ray; only this package imports it.
"""

try:
    import ray.rllib  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError('baselines.rllib needs Ray RLlib: pip install "ssd-gym[rllib]" '
                      f"(import failed: {exc})") from exc

from baselines.rllib.algo import env_config_for, ppo_config
from baselines.rllib.env import SSDMultiAgentEnv, build_parallel_env, env_creator, register_envs
from baselines.rllib.metrics import SSDMetricsCallback, episode_social_metrics
from baselines.rllib.module import SSDLstmModule

__all__ = ["SSDMultiAgentEnv", "SSDLstmModule", "SSDMetricsCallback", "build_parallel_env", "env_creator",
           "register_envs", "env_config_for", "ppo_config", "episode_social_metrics"]

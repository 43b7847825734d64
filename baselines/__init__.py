"""ssd-gym baseline zoo: the paper's agents on sb3-contrib RecurrentPPO.

What lives where:

* ``configs/``: the agents as data: ``<agent>.yaml`` (what each agent changes) and ``games.yaml``
  (the tuned values per game, the paper's Tables 1-3);
* ``config``: the typed config (dataclasses, their defaults) and its loading with OmegaConf;
* ``envs``: a config's batched env: ``ssd_gym.vector_env`` + the ``wrappers`` reward it names;
* ``network``: the paper's network as an sb3-contrib policy;
* ``lockstep``: N RecurrentPPO learners stepping one batched env;
* ``curves``: a run's ``progress.csv`` (episode records, scores); ``checkpoint``: crash-safe saves;
  ``runlock``: one trainer per run directory; ``cli``: what the commands share;
* ``train`` / ``evaluate`` / ``leaderboard``: the commands ``ssd-train`` / ``ssd-eval`` / ``ssd-leaderboard``.
"""

from baselines.config import AgentConfig, ConfigError, load_agent_config, zoo_names

__all__ = ["AgentConfig", "ConfigError", "load_agent_config", "zoo_names"]

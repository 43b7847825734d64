"""ssd-gym baseline zoo: the paper's agents on sb3-contrib RecurrentPPO.

Modules: ``config`` (typed agent configs, YAML), ``network`` (the paper's network as a features
extractor), ``envs`` (env + social-reward wrappers per config), ``lockstep`` (N RecurrentPPO learners
stepping one batched VecEnv), ``train`` / ``evaluate`` / ``leaderboard`` (commands).
"""

from baselines.config import AgentConfig, ConfigError, load_agent_config, zoo_names

__all__ = ["AgentConfig", "ConfigError", "load_agent_config", "zoo_names"]

"""API faces over the engine: PettingZoo (parallel and AEC), Gymnasium, SB3 VecEnv."""
from .gym_env import SSDJointEnv
from .parallel import SSDParallelEnv

__all__ = ["SSDParallelEnv", "SSDJointEnv", "SSDVecEnv"]


def __getattr__(name):
    # The VecEnv pulls in stable-baselines3 (and torch): load it only when asked for.
    if name == "SSDVecEnv":
        from .vector import SSDVecEnv

        return SSDVecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

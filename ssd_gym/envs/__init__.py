"""API faces over the engine: PettingZoo (parallel and AEC), Gymnasium, SB3 VecEnv."""
from .gym_env import SSDJointEnv
from .parallel import SSDParallelEnv
from .vector import SSDVecEnv

__all__ = ["SSDParallelEnv", "SSDJointEnv", "SSDVecEnv"]

"""Trajectory fingerprints: every game, obs mode and a few rule variants replay bit for bit.

Each case steps a fixed pseudo-random action sequence through ``ssd_gym.parallel_env`` (two
episodes: the second reset unseeded, so the world's generator carries on) or through
``ssd_gym.vector_env`` (three worlds across auto-resets), and hashes everything the env hands
out: observations, rewards, flags and infos (values and Python/numpy types), except the
wall-clock ``info["episode"]["t"]``. The digests in ``tests/data/fingerprints.json`` were
recorded from the engine before issue 11's refactoring; any change to a trajectory, a dtype or an
info value shows up here. Re-record only for an intended behaviour change:

    python tests/test_fingerprints.py --record
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import ssd_gym

DATA = Path(__file__).parent / "data" / "fingerprints.json"
GAMES = ("cleanup", "cleanup_small", "harvest", "harvest_small", "box_trapped")
MAX_CYCLES = 60       # short episodes, so that every case crosses an episode end
PARALLEL_STEPS = 2 * MAX_CYCLES
VECTOR_STEPS = 150    # 2.5 episodes per world
VECTOR_WORLDS = 3

# name -> (game, options); obs modes and seeds are added below
VARIANTS: dict[str, tuple[str, dict]] = {
    "cleanup-reference": ("cleanup", {"rules": "reference"}),
    "cleanup-retry": ("cleanup", {"waste_spawning": "retry"}),
    "cleanup-nobeams": ("cleanup", {"beams_visible": False}),
    "cleanup-thresholds": ("cleanup", {"depletion_threshold": 0.6, "restoration_threshold": 0.1,
                                       "waste_spawn_prob": 0.9, "apple_respawn_prob": 0.3}),
    "cleanup_small-reference": ("cleanup_small", {"rules": "reference"}),
    "harvest-reference": ("harvest", {"rules": "reference"}),
    "harvest-box": ("harvest", {"regrowth_neighbourhood": "box"}),
    "harvest-probs": ("harvest", {"regrowth_probs": (0.01, 0.1, 0.3), "num_agents": 7}),
    "harvest-view3-beam2": ("harvest", {"view_radius": 3, "beam_length": 2}),
    "harvest_small-solo": ("harvest_small", {"num_agents": 1}),
    "harvest_small-nobeams": ("harvest_small", {"beams_visible": False}),
    "box_trapped-clear": ("box_trapped", {"opaque_box": False}),
    "box_trapped-adjacent": ("box_trapped", {"open_requires_adjacency": True,
                                             "apple_regrow_delay": 4}),
    "box_trapped-reference": ("box_trapped", {"rules": "reference"}),
}


def cases() -> dict[str, tuple[str, str, str, dict, int]]:
    """case id -> (face, game, obs_mode, options, seed)."""
    out = {}
    for face in ("parallel", "vector"):
        for game in GAMES:
            for obs_mode, seeds in (("dict", (0, 1, 2)), ("rgb", (3,))):
                for seed in seeds:
                    out[f"{face}/{game}/{obs_mode}/{seed}"] = (face, game, obs_mode, {}, seed)
        for name, (game, options) in VARIANTS.items():
            out[f"{face}/{name}/dict/5"] = (face, game, "dict", options, 5)
    return out


# ---- canonical hashing -------------------------------------------------------------------------
def feed(h, x) -> None:
    """Hash x with its type, recursively (dict keys sorted)."""
    h.update(type(x).__name__.encode())
    if isinstance(x, dict):
        h.update(struct.pack("<q", len(x)))
        for k in sorted(x, key=str):
            feed(h, k)
            feed(h, x[k])
    elif isinstance(x, (list, tuple)):
        h.update(struct.pack("<q", len(x)))
        for v in x:
            feed(h, v)
    elif isinstance(x, np.ndarray):
        h.update(f"{x.dtype.str}{x.shape}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    elif isinstance(x, np.generic):
        h.update(x.dtype.str.encode())
        h.update(x.tobytes())
    elif isinstance(x, (bool, int)):
        h.update(str(int(x)).encode())
    elif isinstance(x, float):
        h.update(struct.pack("<d", x))
    elif isinstance(x, str):
        h.update(x.encode())
    elif x is None:
        pass
    else:
        raise TypeError(f"cannot fingerprint {type(x).__name__}")
    h.update(b";")


def _drop_clock(infos):
    """Infos without the wall-clock ``episode["t"]`` (SB3 Monitor format)."""
    out = []
    for info in infos:
        if "episode" in info:
            info = dict(info, episode={k: v for k, v in info["episode"].items() if k != "t"})
        out.append(info)
    return out


def run_parallel(game: str, obs_mode: str, options: dict, seed: int) -> str:
    env = ssd_gym.parallel_env(game, obs_mode=obs_mode, max_cycles=MAX_CYCLES, **options)
    A = env.action_space(env.possible_agents[0]).n
    acts = np.random.default_rng(1000 + seed).integers(0, A, size=(PARALLEL_STEPS, len(env.possible_agents)))
    h = hashlib.sha256()
    feed(h, env.reset(seed=seed))
    for row in acts:
        if not env.agents:
            feed(h, env.reset())
        feed(h, env.step(dict(zip(env.possible_agents, row.tolist()))))
        feed(h, env.state())
    return h.hexdigest()[:20]


def run_vector(game: str, obs_mode: str, options: dict, seed: int) -> str:
    venv = ssd_gym.vector_env(game, VECTOR_WORLDS, obs_mode=obs_mode, max_cycles=MAX_CYCLES, **options)
    acts = np.random.default_rng(2000 + seed).integers(0, venv.action_space.n, size=(VECTOR_STEPS, venv.num_envs))
    h = hashlib.sha256()
    feed(h, venv.seed(seed))
    feed(h, venv.reset())
    for a in acts:
        obs, rewards, dones, infos = venv.step(a)
        feed(h, (obs, rewards, dones, _drop_clock(infos)))
    return h.hexdigest()[:20]


def fingerprint(case: str) -> str:
    face, game, obs_mode, options, seed = cases()[case]
    return (run_parallel if face == "parallel" else run_vector)(game, obs_mode, options, seed)


# ---- the test ----------------------------------------------------------------------------------
def _recorded() -> dict[str, str]:
    return json.loads(DATA.read_text())


def test_recording_covers_every_case():
    assert sorted(_recorded()) == sorted(cases())


@pytest.mark.parametrize("case", sorted(cases()))
def test_fingerprint(case):
    assert fingerprint(case) == _recorded()[case], f"trajectory of {case} changed"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps({c: fingerprint(c) for c in sorted(cases())}, indent=0) + "\n")
    print(f"recorded {len(cases())} fingerprints in {DATA}")

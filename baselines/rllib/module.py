"""The paper's network as an RLlib ``TorchRLModule`` (new API stack).

Jaques et al. (2019), supplement section 4: one conv layer (kernel 3, stride 1, 6 channels, ReLU),
two fully connected layers of 32 (tanh, as in ``baselines.network``), an LSTM of 128 cells, then a
policy head and a value head, both on the LSTM output (one trunk, trained by both losses: the zoo's
``critic: shared``).

Observations: our uint8 RGB view (``Box(0, 255, (H, W, 3))``, divided by 255 here) or our ``Dict``
observation, whose ``"rgb"`` key (or ``"observation"``, the key :class:`wrappers.InequityAversionReward`
gives a wrapped Box) is the image. With ``use_actions=True`` the visible-action channel
(``prev_action``, ``others_prev_actions``, ``others_visible``, one-hot) enters after the conv and
before the FC layers (the paper's visible-actions baseline); ``extra_keys`` names more Dict keys to
concatenate there (e.g. ``"smoothed_rewards"``). RLlib's default encoders need neither: its CNN
fails on uint8 input and it has no encoder for a Dict.

``model_config`` keys: ``conv_channels`` (6), ``kernel_size`` (3), ``fc_sizes`` ([32, 32]),
``lstm_cell_size`` (128), ``use_actions`` (False), ``extra_keys`` ([]), ``critic`` (``"shared"``),
``max_seq_len`` (20; RLlib's connectors cut training sequences to this many steps).

``critic`` as the zoo's ``network.critic`` (``baselines.network.SSDLstmPolicy``): ``"shared"``, the
value head on the policy's LSTM output, trained by both losses (the paper's A3C); ``"detached"``, the
same input detached, so the value loss trains the value head only (sb3-contrib's ``shared_lstm``);
``"separate"``, a critic LSTM of its own on the shared conv/FC trunk.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn
from torch.nn import functional as F

#: Dict keys of the visible-action channel, in the order they are concatenated (as the zoo's)
ACTION_KEYS = ("prev_action", "others_prev_actions", "others_visible")
IMAGE_KEYS = ("rgb", "observation")
RLLIB_MODEL_KEYS = {f.name for f in dataclasses.fields(DefaultModelConfig)}
DEFAULTS = {"conv_channels": 6, "kernel_size": 3, "fc_sizes": [32, 32], "lstm_cell_size": 128,
            "use_actions": False, "extra_keys": [], "critic": "shared", "max_seq_len": 20}
CRITICS = ("shared", "detached", "separate")


def _vector_dim(space: gym.Space, key: str) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, (gym.spaces.MultiBinary, gym.spaces.Box)):
        return int(np.prod(space.shape))
    raise TypeError(f"observation key {key!r}: cannot feed a {type(space).__name__} to the network")


def _encode(x: torch.Tensor, space: gym.Space, lead: tuple[int, ...]) -> torch.Tensor:
    """One observation key as floats ``[*lead, dim]`` (Discrete / MultiDiscrete one-hot)."""
    if isinstance(space, gym.spaces.Discrete):
        return F.one_hot((x.long() - int(space.start)).reshape(lead), int(space.n)).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        x = x.long().reshape(*lead, -1)
        return torch.cat([F.one_hot(x[..., i], int(n)) for i, n in enumerate(space.nvec.ravel())], dim=-1).float()
    return x.reshape(*lead, -1).float()


def _run_lstm(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """``lstm`` over ``x [B, T, F]`` from state ``(h, c) [B, H]``; one step (acting) by the LSTM cell
    alone, which is several times cheaper than ``nn.LSTM``'s call for T = 1 (same result)."""
    if x.shape[1] == 1:
        h, c = torch.lstm_cell(x[:, 0], (h, c), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        return h.unsqueeze(1), h, c
    out, (h, c) = lstm(x, (h.unsqueeze(0), c.unsqueeze(0)))
    return out, h.squeeze(0), c.squeeze(0)


class SSDLstmModule(TorchRLModule, ValueFunctionAPI):
    """conv(3x3, 6) -> [visible actions] -> FC 32 -> FC 32 -> LSTM 128 -> policy logits, value."""

    def setup(self):
        cfg = {**DEFAULTS, **(self.model_config or {})}
        # RLlib merges its algorithm's defaults (DefaultModelConfig fields such as vf_share_layers) in
        unknown = sorted(set(self.model_config or {}) - set(DEFAULTS) - RLLIB_MODEL_KEYS)
        if unknown:
            raise ValueError(f"SSDLstmModule: unknown model_config key(s) {unknown}; the keys are {', '.join(DEFAULTS)}")
        space = self.observation_space
        if isinstance(space, gym.spaces.Dict):
            image_key = next((k for k in IMAGE_KEYS if k in space.spaces), None)
            if image_key is None:
                raise ValueError(f"SSDLstmModule: a Dict observation needs an image key ({' or '.join(IMAGE_KEYS)}), "
                                 f"got {list(space.spaces)}")
            image_space = space.spaces[image_key]
            keys = [k for k in ACTION_KEYS if cfg["use_actions"] and k in space.spaces]
            missing = [k for k in cfg["extra_keys"] if k not in space.spaces]
            if missing:
                raise ValueError(f"SSDLstmModule: extra_keys {missing} are not in the observation {list(space.spaces)}")
            keys += [k for k in cfg["extra_keys"] if k not in keys]
        else:
            image_key, image_space, keys = None, space, []
            if cfg["use_actions"] or cfg["extra_keys"]:
                raise ValueError("SSDLstmModule: use_actions / extra_keys need a Dict observation (obs_mode='dict')")
        if not isinstance(image_space, gym.spaces.Box) or len(image_space.shape) != 3:
            raise ValueError(f"SSDLstmModule needs an image Box (H, W, C), got {image_space}")
        self.image_key, self.vector_keys = image_key, tuple(keys)
        self.vector_spaces = {k: space.spaces[k] for k in keys}
        self.image_shape = tuple(int(s) for s in image_space.shape)
        self.scale = 255.0 if image_space.dtype == np.uint8 else 1.0
        h, w, c = self.image_shape
        k = int(cfg["kernel_size"])
        self.conv = nn.Conv2d(c, int(cfg["conv_channels"]), k, stride=1)
        in_dim = int(cfg["conv_channels"]) * (h - k + 1) * (w - k + 1)
        in_dim += sum(_vector_dim(self.vector_spaces[key], key) for key in self.vector_keys)
        layers: list[nn.Module] = []
        for size in cfg["fc_sizes"]:
            layers += [nn.Linear(in_dim, int(size)), nn.Tanh()]
            in_dim = int(size)
        self.fc = nn.Sequential(*layers)
        self.cell_size = int(cfg["lstm_cell_size"])
        self.lstm = nn.LSTM(in_dim, self.cell_size, batch_first=True)
        self.critic = cfg["critic"]
        if self.critic not in CRITICS:
            raise ValueError(f"SSDLstmModule: critic must be one of {', '.join(CRITICS)}, got {self.critic!r}")
        self.critic_lstm = nn.LSTM(in_dim, self.cell_size, batch_first=True) if self.critic == "separate" else None
        self.pi = nn.Linear(self.cell_size, int(self.action_space.n))
        self.vf = nn.Linear(self.cell_size, 1)

    def get_initial_state(self) -> Any:
        keys = ("h", "c", "vh", "vc") if self.critic_lstm is not None else ("h", "c")
        return {k: np.zeros(self.cell_size, dtype=np.float32) for k in keys}

    def _features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(policy features, value features, state out), each ``[B, T, ...]``."""
        obs = batch[Columns.OBS]
        image = obs[self.image_key] if self.image_key is not None else obs
        B, T = image.shape[:2]  # RLlib adds the time axis for stateful modules
        x = image.reshape(B * T, *self.image_shape).float() / self.scale
        x = F.relu(self.conv(x.permute(0, 3, 1, 2))).flatten(1)
        if self.vector_keys:
            x = torch.cat([x, *(_encode(obs[k], self.vector_spaces[k], (B * T,)) for k in self.vector_keys)], dim=1)
        x = self.fc(x).reshape(B, T, -1)
        state = batch[Columns.STATE_IN]
        out, h, c = _run_lstm(self.lstm, x, state["h"], state["c"])
        state_out = {"h": h, "c": c}
        if self.critic_lstm is not None:
            vout, vh, vc = _run_lstm(self.critic_lstm, x, state["vh"], state["vc"])
            state_out.update(vh=vh, vc=vc)
        else:
            vout = out.detach() if self.critic == "detached" else out
        return out, vout, state_out

    def _forward(self, batch: dict, **kwargs) -> dict:
        out, _, state = self._features(batch)
        return {Columns.ACTION_DIST_INPUTS: self.pi(out), Columns.STATE_OUT: state}

    def _forward_train(self, batch: dict, **kwargs) -> dict:
        out, vout, state = self._features(batch)
        return {Columns.ACTION_DIST_INPUTS: self.pi(out), Columns.STATE_OUT: state, Columns.EMBEDDINGS: vout}

    def compute_values(self, batch: dict, embeddings: Any = None) -> torch.Tensor:
        if embeddings is None:
            _, embeddings, _ = self._features(batch)
        return self.vf(embeddings).squeeze(-1)

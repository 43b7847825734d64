"""The paper's network as an sb3-contrib ``MultiInputLstmPolicy`` / ``CnnLstmPolicy`` configuration.

Jaques et al. (2019), supplement section 4: one conv layer (kernel 3, stride 1, 6 channels), two fully
connected layers of 32, an LSTM of 128 cells, then policy and value heads.

In sb3-contrib terms that is a *features extractor* (conv + FC 32 + FC 32) followed by the policy's own
LSTM (``lstm_hidden_size=128``) and linear heads (``net_arch=[]``). ``policy_kwargs(...)`` builds the
keyword arguments; ``SSDFeaturesExtractor`` is the extractor.

The visible-action channel (own previous action, others' previous actions and their visibility) is
one-hot encoded and concatenated to the flattened conv output, i.e. it enters *after* the conv and
before the FC layers, so the LSTM sees it (the paper's "visible actions baseline").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: Dict observation keys that carry the visible-action channel, in the order they are concatenated.
ACTION_KEYS = ("prev_action", "others_prev_actions", "others_visible")


def _one_hot_size(space: spaces.Space) -> int:
    """Width of the flat encoding of a non-image key (one-hot for discrete spaces)."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"unsupported observation key space {space!r}")


class SSDFeaturesExtractor(BaseFeaturesExtractor):
    """conv(3x3, 6 ch, valid, ReLU) -> flatten [+ visible actions] -> FC 32 -> FC 32 (tanh).

    Works on a plain image ``Box`` (H, W, 3) or on a ``Dict`` with an ``"rgb"`` key. With
    ``use_actions=False`` a Dict's other keys are ignored, so the same observation space can feed both
    the plain learner and the visible-actions learner.

    SB3's preprocessing has already divided uint8 images by 255 and one-hot encoded Discrete /
    MultiDiscrete keys when ``forward`` is called (``preprocess_obs``), so the extractor only
    reshapes and concatenates.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        conv_channels: int = 6,
        kernel_size: int = 3,
        fc_sizes: tuple[int, ...] | list[int] = (32, 32),
        use_actions: bool = True,
        extra_keys: tuple[str, ...] | list[str] = (),
    ) -> None:
        fc_sizes = tuple(int(s) for s in fc_sizes)
        if not fc_sizes:
            raise ValueError("fc_sizes must name at least one layer")
        super().__init__(observation_space, features_dim=fc_sizes[-1])
        if isinstance(observation_space, spaces.Dict):
            if "rgb" not in observation_space.spaces:
                raise ValueError(f"Dict observation needs an 'rgb' key, got {list(observation_space.spaces)}")
            image_space = observation_space.spaces["rgb"]
            keys = [k for k in ACTION_KEYS if use_actions and k in observation_space.spaces]
            keys += [k for k in extra_keys if k in observation_space.spaces and k not in keys]
            self.vector_keys = tuple(keys)
            vector_dim = sum(_one_hot_size(observation_space.spaces[k]) for k in self.vector_keys)
        elif isinstance(observation_space, spaces.Box):
            image_space = observation_space
            self.vector_keys = ()
            vector_dim = 0
        else:
            raise TypeError(f"observation space must be Box or Dict, got {type(observation_space).__name__}")
        self.is_dict = isinstance(observation_space, spaces.Dict)
        # SB3 wraps channels-last image envs in VecTransposeImage, so the policy usually sees (C, H, W);
        # accept both layouts.
        self.channels_last = not is_image_space_channels_first(image_space)
        if self.channels_last:
            h, w, c = image_space.shape
        else:
            c, h, w = image_space.shape
        self.conv = nn.Sequential(nn.Conv2d(c, conv_channels, kernel_size, stride=1), nn.ReLU(), nn.Flatten())
        conv_out = conv_channels * (h - kernel_size + 1) * (w - kernel_size + 1)
        layers: list[nn.Module] = []
        in_dim = conv_out + vector_dim
        for size in fc_sizes:
            layers += [nn.Linear(in_dim, size), nn.Tanh()]
            in_dim = size
        self.fc = nn.Sequential(*layers)

    def forward(self, observations: Any) -> th.Tensor:
        image = observations["rgb"] if self.is_dict else observations
        x = image.permute(0, 3, 1, 2) if self.channels_last else image
        # NHWC memory layout: torch's CPU conv with 3 input channels runs ~2x faster on it
        x = self.conv(x.contiguous(memory_format=th.channels_last))
        if self.vector_keys:
            vec = [observations[k].reshape(x.shape[0], -1).float() for k in self.vector_keys]
            x = th.cat([x, *vec], dim=1)
        return self.fc(x)


def policy_kwargs(
    conv_channels: int = 6,
    fc_sizes: tuple[int, ...] | list[int] = (32, 32),
    lstm_hidden_size: int = 128,
    use_actions: bool = True,
    shared_lstm: bool = True,
    extra_keys: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``RecurrentPPO("MultiInputLstmPolicy" | "CnnLstmPolicy", ..., policy_kwargs=...)``.

    ``shared_lstm=True`` is the paper's single LSTM under both heads; sb3-contrib then detaches the
    value head from the LSTM (only the policy gradient trains it), so the default is sb3-contrib's
    separate critic LSTM on top of the shared conv/FC trunk.
    """
    return dict(
        features_extractor_class=SSDFeaturesExtractor,
        features_extractor_kwargs=dict(
            conv_channels=conv_channels,
            fc_sizes=list(fc_sizes),
            use_actions=use_actions,
            extra_keys=list(extra_keys),
        ),
        share_features_extractor=True,
        net_arch=[],  # heads sit directly on the LSTM output
        lstm_hidden_size=lstm_hidden_size,
        n_lstm_layers=1,
        shared_lstm=shared_lstm,
        enable_critic_lstm=not shared_lstm,
        normalize_images=True,
    )


def policy_name(observation_space: gym.Space) -> str:
    """The sb3-contrib policy alias that fits an observation space."""
    return "MultiInputLstmPolicy" if isinstance(observation_space, spaces.Dict) else "CnnLstmPolicy"

"""The paper's network as an sb3-contrib ``MultiInputLstmPolicy`` / ``CnnLstmPolicy`` configuration.

Jaques et al. (2019), supplement section 4: one conv layer (kernel 3, stride 1, 6 channels), two fully
connected layers of 32, an LSTM of 128 cells, then policy and value heads.

In sb3-contrib terms that is a *features extractor* (conv + FC 32 + FC 32) followed by the policy's own
LSTM (``lstm_hidden_size=128``) and linear heads (``net_arch=[]``). ``policy_kwargs(...)`` builds the
keyword arguments; ``SSDFeaturesExtractor`` is the extractor and ``SSDLstmPolicy`` the policy
(sb3-contrib's ``RecurrentActorCriticPolicy`` with a whole-sequence LSTM pass and a choice of critic).

The visible-action channel (own previous action, others' previous actions and their visibility) is
one-hot encoded and concatenated to the flattened conv output, i.e. it enters *after* the conv and
before the FC layers, so the LSTM sees it (the paper's "visible actions baseline").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from baselines.config import CRITICS

#: Dict observation keys that carry the visible-action channel, in the order they are concatenated.
ACTION_KEYS = ("prev_action", "others_prev_actions", "others_visible")


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
            self.vector_dims = tuple(get_flattened_obs_dim(observation_space.spaces[k]) for k in self.vector_keys)
            vector_dim = sum(self.vector_dims)
        elif isinstance(observation_space, spaces.Box):
            image_space = observation_space
            self.vector_keys, self.vector_dims = (), ()
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
        return self.head(self.image_features(observations), self.vector(observations))

    def image_features(self, observations: Any) -> th.Tensor:
        """The flattened conv output ``[B, C]``."""
        image = observations["rgb"] if self.is_dict else observations
        return self.conv(image.permute(0, 3, 1, 2) if self.channels_last else image)

    def vector(self, observations: Any) -> th.Tensor | None:
        """The (one-hot) vector keys side by side ``[B, D]``, or None without any."""
        if not self.vector_keys:
            return None
        return th.cat([observations[k].reshape(observations[k].shape[0], -1).float() for k in self.vector_keys], dim=1)

    def vector_slice(self, key: str) -> slice:
        """Where ``key``'s (one-hot) entries lie in :meth:`vector`."""
        i = self.vector_keys.index(key)
        start = sum(self.vector_dims[:i])
        return slice(start, start + self.vector_dims[i])

    def head(self, image_features: th.Tensor, vector: th.Tensor | None) -> th.Tensor:
        """The FC layers on the conv output and the vector keys."""
        return self.fc(image_features if vector is None else th.cat([image_features, vector], dim=1))

    def head_variants(self, image_features: th.Tensor, vectors: th.Tensor) -> th.Tensor:
        """:meth:`head` for ``R`` variants of the vector keys over the same images: ``image_features
        [B, C]``, ``vectors [R, B, D]`` -> ``[R * B, F]``. The first layer's image part is computed
        once: ``W [x; v] = W_x x + W_v v``."""
        first = self.fc[0]
        c = image_features.shape[1]
        shared = nn.functional.linear(image_features, first.weight[:, :c], first.bias)  # [B, H]
        x = shared.unsqueeze(0) + vectors @ first.weight[:, c:].T  # [R, B, H]
        return self.fc[1:](x.reshape(-1, x.shape[-1]))


class SSDLstmPolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's recurrent actor-critic policy with a faster LSTM pass and a choice of critic.

    Works for image ``Box`` and ``Dict`` observations alike (the features extractor is always given).

    ``critic``:

    * ``"shared"`` (default): the paper's A3C, one conv/FC/LSTM trunk under both heads, trained by
      the policy *and* the value loss. (sb3-contrib's ``shared_lstm=True`` detaches the value head
      from the LSTM, which leaves a linear probe on features only the policy loss trains.)
    * ``"separate"``: sb3-contrib's own critic LSTM on the shared conv/FC trunk.
    * ``"detached"``: sb3-contrib's ``shared_lstm=True`` as it is.

    ``_process_sequence`` runs the LSTM over whole stretches of time in one ``nn.LSTM`` call and
    resets the state only at the steps where some sequence starts an episode. sb3-contrib falls back
    to a Python loop over every time step as soon as one episode start lies anywhere in the batch,
    which is almost every PPO minibatch (its buffer begins a sequence at each episode start). The
    results are the same (tested against sb3-contrib's loop).
    """

    def __init__(self, *args: Any, critic: str = "shared", **kwargs: Any) -> None:
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {critic!r}")
        self.critic_kind = critic
        kwargs["shared_lstm"] = critic != "separate"
        kwargs["enable_critic_lstm"] = critic == "separate"
        super().__init__(*args, **kwargs)

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.LSTM,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        n_seq = lstm_states[0].shape[1]
        if features.shape[0] == n_seq and lstm.num_layers == 1 and lstm.proj_size == 0 and not lstm.bidirectional:
            # one time step (acting): the LSTM cell alone
            keep = (1.0 - episode_starts).view(n_seq, 1)
            h, c = th.lstm_cell(features, (keep * lstm_states[0][0], keep * lstm_states[1][0]),
                                lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
            return h, (h.unsqueeze(0), c.unsqueeze(0))
        sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)  # [T, n_seq, F]
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)  # [T, n_seq]
        # segment boundaries: t = 0 and every step at which any sequence starts an episode
        cuts = [0, *(th.nonzero(starts[1:].any(dim=1)).flatten() + 1).tolist(), sequence.shape[0]]
        h, c = lstm_states
        outputs = []
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            keep = (1.0 - starts[t0]).view(1, n_seq, 1)
            out, (h, c) = lstm(sequence[t0:t1], (keep * h, keep * c))
            outputs.append(out)
        output = outputs[0] if len(outputs) == 1 else th.cat(outputs)
        return th.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), (h, c)

    def evaluate_actions(
        self, obs: th.Tensor, actions: th.Tensor, lstm_states: Any, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        if self.critic_kind != "shared":
            return super().evaluate_actions(obs, actions, lstm_states, episode_starts)
        # sb3-contrib's evaluate_actions for shared_lstm, without detaching the value head's input
        features = self.extract_features(obs)
        latent, _ = self._process_sequence(features, lstm_states.pi, episode_starts, self.lstm_actor)
        latent_pi = self.mlp_extractor.forward_actor(latent)
        latent_vf = self.mlp_extractor.forward_critic(latent)
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()


def policy_kwargs(
    conv_channels: int = 6,
    fc_sizes: tuple[int, ...] | list[int] = (32, 32),
    lstm_hidden_size: int = 128,
    use_actions: bool = True,
    critic: str = "shared",
    extra_keys: tuple[str, ...] | list[str] = (),
    policy_layers: tuple[int, ...] | list[int] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``RecurrentPPO(SSDLstmPolicy, ..., policy_kwargs=...)`` (``critic``: see
    :class:`SSDLstmPolicy`; ``extra_keys``: Dict keys the FC layers read beside the image and the
    visible actions; ``policy_layers``: hidden layers between the LSTM and the policy's logits, e.g.
    the paper's communication embedding)."""
    return dict(
        features_extractor_class=SSDFeaturesExtractor,
        features_extractor_kwargs=dict(
            conv_channels=conv_channels,
            fc_sizes=list(fc_sizes),
            use_actions=use_actions,
            extra_keys=list(extra_keys),
        ),
        share_features_extractor=True,
        # heads sit directly on the LSTM output (unless policy_layers)
        net_arch=dict(pi=list(policy_layers), vf=[]) if policy_layers else [],
        lstm_hidden_size=lstm_hidden_size,
        n_lstm_layers=1,
        critic=critic,
        normalize_images=True,
    )

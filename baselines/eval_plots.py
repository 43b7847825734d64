"""The analyses ``ssd-eval`` plots: the influence trace of an episode (``--influence-plot``) and
the paper's communication measures (``--comm-plot``), from :func:`baselines.evaluate.evaluate_run`'s result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_influence(result: dict[str, Any], path: str | Path) -> Path:
    """Each agent's influence reward (clipped, before beta) at every step of the recorded episode
    (supplement Figure 5), with the box's opening marked on Box Trapped."""
    plt = _pyplot()
    trace = result["influence_trace"]
    values = np.asarray(trace["influence"])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for k in range(values.shape[1]):
        ax.plot(values[:, k], lw=1.2, label=f"agent {k}")
    if trace.get("open_step") is not None:
        ax.axvline(trace["open_step"], color="k", ls="--", lw=1, label=f"box opened (step {trace['open_step']})")
    ax.set_xlabel("step of the episode")
    ax.set_ylabel("influence reward (nats)")
    ax.set_title(f"{result['agent']} on {result['game']}, {result['agent_steps']:,} agent-steps: "
                 f"world {trace['world']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def communication_measures(result: dict[str, Any]) -> dict[str, Any]:
    """The paper's communication analyses (section 5.1) of the recorded first round: per-agent
    speaker consistency, and symbol/action and action/action instantaneous coordination (max over
    agent pairs), over all steps and over the influential moments (a speaker's influence at least
    its mean). See :mod:`ssd_gym.analysis` for the definitions."""
    from ssd_gym.analysis import instantaneous_coordination, speaker_consistency

    m = result["messages"]
    actions, symbols, influence = np.asarray(m["actions"]), np.asarray(m["symbols"]), np.asarray(m["influence"])
    na, nv = m["num_actions"], m["vocab_size"]
    moments = influence >= np.nanmean(influence, axis=(0, 1), keepdims=True)
    # a speaker that always says the same scores at least 0.5 (its symbol given its action is certain):
    # read the consistency next to how much of the vocabulary it uses (entropy / log vocab_size)
    counts = np.stack([np.bincount(symbols[..., k].ravel(), minlength=nv) for k in range(symbols.shape[-1])])
    p = counts / counts.sum(1, keepdims=True)
    entropy = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(1) / np.log(nv)
    out = {"speaker_consistency": speaker_consistency(actions, symbols, na, nv).tolist(),
           "symbol_entropy": entropy.tolist(), "influential_share": float(moments.mean())}
    for name, signals, size in (("symbol_action_ic", symbols, nv), ("action_action_ic", actions, na)):
        out[name] = float(np.nanmax(instantaneous_coordination(signals, actions, size, na)))
        out[name + "_influential"] = float(np.nanmax(instantaneous_coordination(signals, actions, size, na, moments)))
    return out


def plot_communication(result: dict[str, Any], measures: dict[str, Any], path: str | Path) -> Path:
    """Speaker consistency per agent and the two instantaneous coordinations (all steps and
    influential moments) as bars."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    sc, ent = measures["speaker_consistency"], measures["symbol_entropy"]
    x = np.arange(len(sc))
    ax1.bar(x - 0.2, sc, 0.4, color="tab:blue", label="speaker consistency")
    ax1.bar(x + 0.2, ent, 0.4, color="tab:gray", label="symbol entropy / log vocab")
    ax1.set_xticks(x, [f"agent {k}" for k in x])
    ax1.set_ylim(0, 1)
    ax1.legend(fontsize=7)
    names = ("symbol_action_ic", "action_action_ic")
    x = np.arange(len(names))
    ax2.bar(x - 0.2, [measures[n] for n in names], 0.4, label="all steps")
    ax2.bar(x + 0.2, [measures[n + "_influential"] for n in names], 0.4, label="influential moments")
    ax2.set_xticks(x, ["symbol / action", "action / action"])
    ax2.set_ylabel("IC, max over pairs (nats)")
    ax2.legend(fontsize=8)
    n_ep = len(result["messages"]["actions"])
    fig.suptitle(f"{result['agent']} on {result['game']}, {result['agent_steps']:,} agent-steps, {n_ep} episodes",
                 fontsize=10)
    return _save(plt, fig, path)

"""Local differential privacy: DP-SGD clients with Opacus, and each client's account.

Every client trains with Opacus's DP-SGD (per-sample gradient clipping to
``max_grad_norm``, Gaussian noise of ``noise_multiplier * max_grad_norm``, Poisson
sampling of batches). A fresh Opacus wrapper is built for every round on a copy of the
model; what persists is the accountant's history, kept in the client's own state, so
each client's epsilon is its own and grows with every round it trains, unlearning rounds
included. Histories are kept per phase (``train``, ``calibrate``, ``retrain``, ...): a
client's epsilon after training is that of its ``train`` history, and the epsilon of an
unlearning method is that of ``train`` plus the method's phase (RDP composes by adding
histories).

With ``target_epsilon`` instead of ``noise_multiplier``, each client chooses its noise
once, at its first private round (:func:`noise_for_target`, Opacus's
``get_noise_multiplier``), for the training it will do: the rounds the server's seeded
sampling gives it, the steps each round takes (:func:`steps_per_round`), at the sample
rate Opacus's accountant records (:func:`opacus_sample_rate`: ``1 / ceil(n / B)``, not
``B / n``). Training then spends between ``target_epsilon * (1 - PLANNING_TOLERANCE)``
and ``target_epsilon``, when the client trains in every round it was planned for.
Every later phase keeps the training noise, chosen once too (:func:`phase_noise`):
unlearning rounds spend more, and that is reported. Central DP is in
:mod:`fedunlearn.defenses.central_dp`; a run's accounting in
:mod:`fedunlearn.defenses.accounting`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ConfigRecord
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.learning.training import LocalTrainingResult

ACCOUNTANT = "rdp"
"""The Opacus accountant every DP-SGD client keeps (``opacus.accountants.RDPAccountant``)."""
HISTORY_PREFIX = "dp-history/"
"""Keys in a client's state of its accountant histories, one per phase."""
NOISE_PREFIX = "dp-noise/"
"""Keys in a client's state of the noise multiplier of each phase, chosen once."""
PLANNING_TOLERANCE = 1e-3
"""How far under its target planned training may land, relative to the target."""

History = list[tuple[float, float, int]]
"""Opacus's accountant history: (noise multiplier, sample rate, steps) entries."""


def epsilon_of(history: History, delta: float) -> float:
    """Epsilon at ``delta`` of an RDP accountant fed ``history``; 0 for no step."""
    if not history:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta))


def load_history(state: MutableMapping[str, Any], phase: str) -> History:
    """The accountant history of ``phase`` in a client's state (empty when none)."""
    record = state.get(HISTORY_PREFIX + phase)
    if not isinstance(record, ConfigRecord):
        return []
    return list(
        zip(
            (float(v) for v in record["noise"]),
            (float(v) for v in record["rate"]),
            (int(v) for v in record["steps"]),
            strict=True,
        )
    )


def save_history(state: MutableMapping[str, Any], phase: str, history: History) -> None:
    """Keep the accountant history of ``phase`` in a client's state."""
    state[HISTORY_PREFIX + phase] = ConfigRecord(
        {
            "noise": [float(h[0]) for h in history],
            "rate": [float(h[1]) for h in history],
            "steps": [int(h[2]) for h in history],
        }
    )


def phases(state: MutableMapping[str, Any]) -> list[str]:
    """Phases this client has trained privately in."""
    return sorted(k[len(HISTORY_PREFIX) :] for k in state if k.startswith(HISTORY_PREFIX))


def spent(state: MutableMapping[str, Any], delta: float) -> dict[str, float]:
    """Epsilon after training, and after training plus each other phase."""
    train = load_history(state, "train")
    out = {"train": epsilon_of(train, delta)}
    for phase in phases(state):
        if phase != "train":
            out[phase] = epsilon_of(train + load_history(state, phase), delta)
    return out


def history_metrics(histories: Mapping[str, History]) -> dict[str, list[float] | list[int]]:
    """Accountant histories by phase as flat metrics (a ``query.privacy`` reply):
    ``noise/<phase>``, ``rate/<phase>`` and ``steps/<phase>``, one entry each."""
    out: dict[str, list[float] | list[int]] = {}
    for phase, history in histories.items():
        out[f"noise/{phase}"] = [float(h[0]) for h in history]
        out[f"rate/{phase}"] = [float(h[1]) for h in history]
        out[f"steps/{phase}"] = [int(h[2]) for h in history]
    return out


def histories_of_metrics(metrics: Mapping[str, Any]) -> dict[str, History]:
    """The histories :func:`history_metrics` wrote, by phase."""
    out: dict[str, History] = {}
    for key, noise in metrics.items():
        if key.startswith("noise/"):
            phase = key.split("/", 1)[1]
            rate, steps = metrics[f"rate/{phase}"], metrics[f"steps/{phase}"]
            out[phase] = list(
                zip(map(float, noise), map(float, rate), map(int, steps), strict=True)
            )
    return out


def opacus_batches(num_examples: int, batch_size: int) -> int:
    """The batches a pass of Opacus's Poisson sampler draws over ``num_examples``
    records in batches of ``batch_size``.

    ``DPDataLoader.from_data_loader`` samples at ``1 / ceil(n / B)`` (one over the
    plain loader's length) and draws ``int(1 / rate)`` batches a pass: ``ceil(n / B)``,
    or one fewer where floating point rounds down (93, 99, 105, ... batches).
    """
    return max(1, int(1 / (1 / max(1, -(-num_examples // batch_size)))))


def opacus_sample_rate(num_examples: int, batch_size: int) -> float:
    """The sample rate Opacus's accountant records for ``num_examples`` records in
    batches of ``batch_size``: one over the DP loader's length (``PrivacyEngine.make_private``),
    that is ``1 / ceil(n / B)`` (:func:`opacus_batches`), a little less than ``B / n``
    when ``B`` does not divide ``n``."""
    return 1 / opacus_batches(num_examples, batch_size)


def steps_per_round(num_examples: int, batch_size: int, epochs: float) -> int:
    """The steps one round of :func:`train_privately` takes: ``epochs`` passes of
    :func:`opacus_batches` batches, rounded up, and at least one step."""
    return _round_steps(opacus_batches(num_examples, batch_size), epochs)


def _round_steps(per_epoch: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * per_epoch))


def noise_for_target(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The noise multiplier with which ``steps`` DP-SGD steps at ``sample_rate`` spend
    ``target_epsilon`` at ``delta`` (RDP accountant).

    Opacus's ``get_noise_multiplier`` bisects until the epsilon lies within
    ``PLANNING_TOLERANCE * target_epsilon`` under the target, never above it.

    Parameters
    ----------
    target_epsilon, delta : float
        The budget to spend.
    sample_rate : float
        The rate Opacus really samples at (:func:`opacus_sample_rate`).
    steps : int
        All the steps the budget covers.

    Returns
    -------
    float
        The noise multiplier (noise standard deviation over the clipping norm).
    """
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=ACCOUNTANT,
            epsilon_tolerance=PLANNING_TOLERANCE * target_epsilon,
        )
    )


def phase_noise(state: MutableMapping[str, Any], phase: str, choose: Callable[[], float]) -> float:
    """The noise multiplier of ``phase``: ``choose()`` at the phase's first round, kept
    in the client's state and read back at every later round of that phase."""
    key = NOISE_PREFIX + phase
    record = state.get(key)
    if not isinstance(record, ConfigRecord):
        record = ConfigRecord({"noise-multiplier": float(choose())})
        state[key] = record
    return float(record["noise-multiplier"])


@dataclass(frozen=True)
class DPTraining:
    """DP-SGD settings of one round of local training."""

    noise_multiplier: float
    max_grad_norm: float


def train_privately(
    model: nn.Module,
    data: ArrayDataset,
    *,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    seed: int,
    dp: DPTraining,
    weight_decay: float = 0.0,
    history: History,
) -> tuple[LocalTrainingResult, History]:
    """DP-SGD with Opacus for ``epochs`` (fractions allowed); returns the result and the
    accountant history extended with this round's steps. ``model`` is trained in place
    (its plain weights, not Opacus's wrapper)."""
    _quiet_opacus()
    return _dp_sgd(
        model, data, epochs, batch_size, learning_rate, momentum, seed, dp, history, weight_decay
    )


def _quiet_opacus() -> None:
    """Silence, for this process, two warnings DP-SGD gives on every call: Opacus's RNG
    is not cryptographically secure (fine for a simulation) and torch's about Opacus's
    backward hooks; neither is actionable. Filters added, not set around each call:
    ``warnings.catch_warnings`` is not safe when clients train in threads at once (adding
    the same filter again replaces it)."""
    warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
    warnings.filterwarnings("ignore", message=".*backward hook.*")


def _dp_sgd(
    model: nn.Module,
    data: ArrayDataset,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    seed: int,
    dp: DPTraining,
    history: History,
    weight_decay: float,
) -> tuple[LocalTrainingResult, History]:
    from opacus import PrivacyEngine  # here: Opacus costs every client process ~1 s to import

    engine = PrivacyEngine(accountant=ACCOUNTANT)
    engine.accountant.history = list(history)
    dataset = TensorDataset(torch.as_tensor(data.x), torch.as_tensor(data.y))
    loader = DataLoader(
        dataset, batch_size=batch_size, generator=torch.Generator().manual_seed(seed)
    )
    # Weight decay acts on the weights, not the data: applied after clipping and noise,
    # it costs no privacy.
    optimizer = torch.optim.SGD(
        model.parameters(), lr=learning_rate, momentum=momentum, weight_decay=weight_decay
    )
    private, optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=dp.noise_multiplier,
        max_grad_norm=dp.max_grad_norm,
        poisson_sampling=True,
        noise_generator=torch.Generator().manual_seed(seed + 1),
    )
    per_epoch = max(1, len(loader))  # opacus_batches(len(data), batch_size)
    total = _round_steps(per_epoch, epochs)
    loss_fn = nn.CrossEntropyLoss()
    done, loss_sum = 0, 0.0
    private.train()
    while done < total:
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            if len(y) == 0:  # Poisson sampling can draw an empty batch: a noise-only step
                optimizer.step()
            else:
                loss = loss_fn(private(x), y)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach())
            done += 1
            if done >= total:
                break
    private.to_standard_module()
    return (
        LocalTrainingResult(steps=done, epochs=done / per_epoch, loss=loss_sum / done),
        list(engine.accountant.history),
    )

"""Subtract the forgotten clients' stored contributions, then optionally distill.

Wu, Zhu and Mitra, "Federated Unlearning with Knowledge Distillation", arXiv 2201.09441
(2022). In FedAvg the global model moves each round by ``sum_k p_k U_k``; the part a
client ``f`` contributed is ``p_f U_f``. The server removes
``sum_t p_f^t U_f^t`` from the trained model, which takes out the forgotten clients'
direct contributions but not their indirect ones (every later update was computed
from models they shaped), so accuracy drops; a server-side knowledge distillation
from the trained model (the teacher) on unlabelled data the server holds restores
it without the forgotten data (which the server does not have).

With a sparse history (``delta_t > 1``) only kept rounds' updates are known;
``interval_scaling`` then counts each kept contribution once for every round until
the next kept round in which the client took part (an estimate; with
``history.delta_t = 1`` the subtraction is exactly the recorded contributions).

Needs from the history: every client's stored updates and example counts (any client
may ask). Cost: server-side only: the subtraction, and the distillation epochs over
the server's unlabelled data (``data.server_fraction``). Whole clients only.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.history import UpdateHistory
from fedunlearn.learning.arrays import Arrays, load_arrays, model_to_arrays, to_record
from fedunlearn.learning.metrics import parameter_distance
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.method import UnlearningJob, UnlearningMethod, UnlearningOutcome


def contribution_weights(history: UpdateHistory, client: int, scaling: bool) -> dict[int, float]:
    """For each kept round the client took part in: how many times its weighted update
    is subtracted (``p_f^t``, times the rounds it stands for when ``scaling``)."""
    weights: dict[int, float] = {}
    kept = history.rounds
    for i, t in enumerate(kept):
        if client not in history[t].updates:
            continue
        end = kept[i + 1] if i + 1 < len(kept) else history.num_rounds + 1
        times = sum(client in history.participation.get(r, ()) for r in range(t, end))
        counts = history[t].num_examples
        share = counts[client] / sum(counts.values())
        weights[t] = share * (times if scaling else 1)
    return weights


def subtract_contributions(
    model: Arrays, history: UpdateHistory, clients: set[int], scaling: bool = True
) -> Arrays:
    """``model`` minus the forgotten clients' weighted stored updates."""
    out = {k: np.array(v, dtype=np.float64) for k, v in model.items()}
    for client in sorted(clients):
        for t, weight in contribution_weights(history, client, scaling).items():
            update = history[t].updates[client]
            for k in out:
                out[k] -= weight * np.asarray(update[k], dtype=np.float64)
    return {k: v.astype(np.asarray(model[k]).dtype) for k, v in out.items()}


def distill(
    student: nn.Module,
    teacher: nn.Module,
    inputs: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    temperature: float,
    batch_size: int,
    seed: int,
) -> float:
    """Train ``student`` to match ``teacher``'s softened outputs on ``inputs``; returns
    the last epoch's mean loss (KL times temperature squared, as Hinton et al.)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(inputs)
    teacher.eval()
    with torch.no_grad():
        targets = torch.softmax(teacher(x) / temperature, dim=1)
    optimizer = torch.optim.SGD(student.parameters(), lr=learning_rate, momentum=0.9)
    loss_value = float("nan")
    for _ in range(epochs):
        student.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            log_p = torch.log_softmax(student(x[batch]) / temperature, dim=1)
            loss = nn.functional.kl_div(log_p, targets[batch], reduction="batchmean")
            loss = loss * temperature**2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        loss_value = total / len(x)
    return loss_value


class Subtract(UnlearningMethod):
    """Subtract stored contributions; optionally distill on server data.

    Parameters
    ----------
    interval_scaling : bool
        With a sparse history, count each kept contribution for the rounds it stands
        for (see the module docstring).
    distill_epochs : int
        Epochs of server-side distillation after the subtraction (0: none). Needs
        ``data.server_fraction > 0``.
    distill_lr : float
        Learning rate of the distillation (SGD, momentum 0.9).
    temperature : float
        Softmax temperature of the distillation.
    batch_size : int
        Distillation minibatch size.
    """

    name = "subtract"
    needs_weighted_mean = True
    trains_clients = False

    def __init__(
        self,
        interval_scaling: bool = True,
        distill_epochs: int = 0,
        distill_lr: float = 0.01,
        temperature: float = 2.0,
        batch_size: int = 64,
    ) -> None:
        if not isinstance(interval_scaling, bool):
            raise ValueError(f"interval_scaling must be true or false, got {interval_scaling!r}")
        if (
            isinstance(distill_epochs, bool)
            or not isinstance(distill_epochs, int)
            or distill_epochs < 0
        ):
            raise ValueError(f"distill_epochs must be an integer >= 0, got {distill_epochs!r}")
        for option, value in (("distill_lr", distill_lr), ("temperature", temperature)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{option} must be a number > 0, got {value!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.interval_scaling = interval_scaling
        self.distill_epochs = distill_epochs
        self.distill_lr = float(distill_lr)
        self.temperature = float(temperature)
        self.batch_size = batch_size

    def check(self, config: ExperimentConfig) -> list[str]:
        if self.distill_epochs and config.data.server_fraction <= 0:
            return [
                "unlearning.subtract.distill_epochs > 0 needs unlabelled server data: set "
                "data.server_fraction (e.g. 0.1)"
            ]
        return []

    def history_bytes(self, history: UpdateHistory) -> int:
        return history.bytes_of(global_models=False)

    def expected_rounds(self, job: UnlearningJob) -> int:
        return 1 + (1 if self.distill_epochs else 0)

    def unlearn(self, job: UnlearningJob) -> UnlearningOutcome:
        started = time.perf_counter()
        if job.evaluate_fn is not None:
            job.evaluate_fn(0, to_record(job.original))
        subtracted = subtract_contributions(
            job.original, job.history, set(job.new.clients), self.interval_scaling
        )
        details = {"subtracted_l2": parameter_distance(job.original, subtracted)}
        if job.evaluate_fn is not None:
            job.evaluate_fn(1, to_record(subtracted))
        result = subtracted
        if self.distill_epochs:
            if job.new_model is None or len(job.server_data) == 0:
                raise ValueError("distillation needs server data and a model factory")
            teacher, student = job.new_model(), job.new_model()
            load_arrays(teacher, job.original)
            load_arrays(student, subtracted)
            details["distill_loss"] = distill(
                student,
                teacher,
                job.server_data,
                epochs=self.distill_epochs,
                learning_rate=self.distill_lr,
                temperature=self.temperature,
                batch_size=self.batch_size,
                seed=derive_seed(job.seed, "distill"),
            )
            result = model_to_arrays(student)
            if job.evaluate_fn is not None:
                job.evaluate_fn(2, to_record(result))
        outcome = UnlearningOutcome(arrays=result, details=details)
        outcome.cost.wall_seconds = time.perf_counter() - started
        return outcome

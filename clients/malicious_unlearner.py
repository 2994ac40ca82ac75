"""The malicious unlearner: takes part in training, then abuses unlearning.

Its behaviour comes from ``[roles.malicious-unlearner]`` (see :class:`MaliciousOptions`):

* ``forge``: asks to remove another client's data (the server's owner check, a
  defence, refuses it; with ``defense.verify_owner = false`` it goes through);
* ``forge_records``: asks to remove ``records`` records it never held, claiming them
  as its own with made-up proofs (the commitment check refuses them; without it the
  server spends an unlearning on them);
* ``over_unlearn``: trains on records it crafts near the decision boundary (the average
  of two records of different classes, labelled as the first), then asks to remove
  them, hoping an approximate method damages the model while "forgetting" them;
* ``camouflage`` (Di et al., "Hidden Poison: Machine Unlearning Enables Camouflaged
  Poisoning Attacks", 2022): trains on poison records (a second trigger, in the
  top-left corner, relabelled to ``poison_target``) together with camouflage records
  (the same trigger, true labels) that keep the poison dormant; then asks to remove
  the camouflage, so the poison wakes up;
* ``flood``: asks to remove ``records`` of its records in ``requests`` separate
  requests, each a separate unlearning when the server serves requests one by one.

With ``control = true`` it asks instead for an honest removal of the same size, which
is what every effect is measured against. Its crafted records get ids far above the
dataset's, so they never collide with real records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.options import option
from fedunlearn.data.canary import apply_trigger, triggered_test_set
from fedunlearn.data.datasets import ArrayDataset, DatasetInfo
from fedunlearn.roles.role import ClientRole
from fedunlearn.roles.setup import ClientSetup
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import UnlearningRequest

CRAFTED_ID_BASE = 10**8


@dataclass(frozen=True)
class MaliciousOptions:
    """``[roles.malicious-unlearner]``: what a malicious unlearner does with unlearning.

    * ``forge``: asks to remove client ``victim``'s data (not its own);
    * ``forge_records``: asks to remove ``records`` records it never held;
    * ``over_unlearn``: trains on ``records`` records it crafts near the decision
      boundary (mixes of two classes), then asks to remove them;
    * ``camouflage``: trains on ``poison`` records carrying a second trigger relabelled
      to ``poison_target`` plus ``camouflage`` records with the same trigger and their
      true labels (the poison stays dormant), then asks to remove the camouflage;
    * ``flood``: asks to remove ``records`` of its records in ``requests`` separate
      requests (with ``unlearning.sequential`` each costs a full unlearning).

    With ``control = true`` it makes instead an honest request of the same size (its
    own data, or as many of its genuine records), so effects are read against it.
    """

    behaviour: str = option(
        "forge",
        "the abuse",
        choices=("forge", "forge_records", "over_unlearn", "camouflage", "flood"),
    )
    control: bool = option(False, "make an honest request of the same size instead")
    victim: int = option(1, "forge: the client whose data it asks to remove", ge=0)
    records: int = option(40, "records it asks to remove (crafted, camouflage or flooded)", ge=1)
    requests: int = option(10, "flood: how many requests", ge=1)
    poison: int = option(40, "camouflage: poison records", ge=1)
    camouflage: int = option(80, "camouflage: camouflage records", ge=1)
    poison_target: int = option(1, "camouflage: class the poison trigger maps to", ge=0)


class MaliciousUnlearner(ClientRole):
    """A participant that abuses unlearning requests (see the module docstring)."""

    name = "malicious-unlearner"
    Options = MaliciousOptions

    @classmethod
    def check(cls, options: MaliciousOptions, config: ExperimentConfig) -> list[str]:
        n = config.federation.num_clients
        if not 0 <= options.victim < n:
            return [f"roles.{cls.name}.victim must be a client id in 0..{n - 1}"]
        return []

    @classmethod
    def audit_probes(
        cls,
        options: MaliciousOptions,
        test: ArrayDataset,
        info: DatasetInfo,
        config: ExperimentConfig,
    ) -> dict[str, tuple[ArrayDataset, int]]:
        """With camouflaged poisoning, test inputs carrying its poison trigger: the audit
        reports ``poison_success_rate``."""
        if options.behaviour != "camouflage" or options.poison_target >= info.num_classes:
            return {}
        target = options.poison_target
        size = config.canary.trigger_size
        return {"poison": (triggered_test_set(test, target, size, corner="top-left"), target)}

    def __init__(self, setup: ClientSetup) -> None:
        super().__init__(setup)
        self.genuine = setup.data
        self.crafted = np.zeros(0, dtype=np.int64)  # ids it will ask to remove
        m: MaliciousOptions = self.options
        if m.behaviour == "over_unlearn":
            extra = self._boundary_records(m.records)
            self.crafted = extra.ids
            setup.data = _join(setup.data, extra)
        elif m.behaviour == "camouflage":
            poison, camouflage = self._camouflaged_poison(m.poison, m.camouflage, m.poison_target)
            self.crafted = camouflage.ids
            setup.data = _join(_join(setup.data, poison), camouflage)

    def _rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng(derive_seed(self.config.seed, purpose, self.client_id) % 2**32)

    def _ids(self, count: int, offset: int) -> np.ndarray:
        start = CRAFTED_ID_BASE + self.client_id * 10**5 + offset
        return np.arange(start, start + count, dtype=np.int64)

    def _boundary_records(self, count: int) -> ArrayDataset:
        """Averages of two genuine records of different classes, labelled as the first."""
        rng = self._rng("boundary")
        data = self.genuine
        if len(np.unique(data.y)) < 2:
            raise ValueError(
                f"client {self.client_id} holds one class only: it cannot craft records "
                "between two classes (use a partition with more classes per client)"
            )
        xs, ys = [], []
        while len(xs) < count:
            a, b = rng.choice(len(data), size=2, replace=False)
            if data.y[a] == data.y[b]:
                continue
            xs.append(0.5 * (data.x[a] + data.x[b]))
            ys.append(data.y[a])
        return ArrayDataset(
            np.stack(xs).astype(np.float32), np.array(ys, np.int64), self._ids(count, 0)
        )

    def _camouflaged_poison(
        self, poison: int, camouflage: int, target: int
    ) -> tuple[ArrayDataset, ArrayDataset]:
        """Poison (trigger, target label) and camouflage (trigger, true label) records."""
        rng = self._rng("camouflage")
        data = self.genuine
        eligible = np.flatnonzero(data.y != target)
        picks = rng.choice(
            eligible, size=poison + camouflage, replace=len(eligible) < poison + camouflage
        )
        size = self.config.canary.trigger_size
        x = apply_trigger(data.x[picks], size, corner="top-left")
        poisoned = ArrayDataset(
            x[:poison], np.full(poison, target, np.int64), self._ids(poison, 20_000)
        )
        hidden = ArrayDataset(
            x[poison:], data.y[picks[poison:]].copy(), self._ids(camouflage, 40_000)
        )
        return poisoned, hidden

    def _genuine_ids(self, count: int, purpose: str) -> tuple[int, ...]:
        ids = self._rng(purpose).choice(
            self.genuine.ids, size=min(count, len(self.genuine)), replace=False
        )
        return tuple(sorted(int(i) for i in ids))

    def unlearning_requests(self) -> list[UnlearningRequest]:
        m: MaliciousOptions = self.options
        me = self.client_id
        if m.behaviour == "forge":
            return [UnlearningRequest(me if m.control else m.victim)]
        if m.behaviour == "forge_records":
            if m.control:
                return [self.request_records(self._genuine_ids(m.records, "control"))]
            # Ids it never held, claimed as its own, with made-up proofs.
            own = set(self.genuine.ids.tolist())
            rng = self._rng("forge-records")
            space = np.setdiff1d(np.arange(int(self.genuine.ids.max()) * 4 + 1), list(own))
            ids = tuple(sorted(int(i) for i in rng.choice(space, size=m.records, replace=False)))
            fake = tuple(rng.bytes(32) for _ in ids)
            return [UnlearningRequest(me, ids, fake)]
        if m.behaviour in ("over_unlearn", "camouflage"):
            if m.control:
                return [self.request_records(self._genuine_ids(len(self.crafted), "control"))]
            return [self.request_records(self.crafted)]
        # flood: the same records, in many small requests or (control) in one
        ids = self._genuine_ids(m.records, "flood")
        if not ids:
            return []
        if m.control:
            return [self.request_records(ids)]
        parts = np.array_split(np.array(ids), min(m.requests, len(ids)))
        return [self.request_records(part.tolist()) for part in parts if len(part)]


def _join(a: ArrayDataset, b: ArrayDataset) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), np.concatenate([a.ids, b.ids])
    )

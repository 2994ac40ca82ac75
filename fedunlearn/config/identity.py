"""Run identity: which config keys make two runs compute the same thing.

Three questions, answered here and nowhere else:

* :func:`training_key`: may two experiments share one training (and one set of
  requests)? Yes when they differ only in what happens after training: the methods
  and their options, the attack, the release, the output.
* :func:`config_hash`: is a finished run folder still the result of this config? Yes
  when everything but :data:`MACHINE_KEYS` (where results go, CPUs, time-outs, log
  verbosity, figures) and :data:`SAME_FIGURES_KEYS` (the backend) is the same.
* :func:`method_key`: is a method run the same as another? Yes for the same class
  with the same options, so a method several runs of a group ask for runs once.

:func:`run_id` names a sweep's run folder from its grid values and seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fedunlearn.config.experiment import ExperimentConfig


class HasOptions(Protocol):
    """Anything that reports the options it was built with (methods, roles)."""

    def options(self) -> dict[str, Any]: ...


POST_TRAINING_KEYS = ("methods", "reference")
"""Keys of ``[unlearning]`` that do not change training or requests; together with the
method option tables, ``[attack]``, ``[release]`` and ``[output]`` they may differ
within a group of runs sharing training."""

POST_TRAINING_SECTIONS = ("output", "attack", "release", "audit")

MACHINE_KEYS = {
    "output": ("dir", "run_dir", "verbose", "figures"),
    "simulation": ("client_cpus",),
    "federation": ("timeout", "connect_timeout"),
    "history": ("path",),
}
"""Config keys left out of :func:`config_hash`: where results go, CPUs per client,
time-outs, log verbosity and figures; they do not change a run's metrics."""


SAME_FIGURES_KEYS = {"simulation": {"backend": "ray"}}
"""Keys whose every value gives the same figures, bit for bit (the Ray, threads and
inline backends at the default ``client_cpus = 1``: ``tests/test_inline.py``,
``tests/test_simulation.py``; with more, the server predicts on one torch thread on
Ray and on ``client_cpus`` in process, which may round differently). The hash
counts each at one value, the one runs were kept with before it could vary (Ray was
the default backend), so those folders keep their hash and every backend shares it."""

ADDED_KEYS = {
    "data": {"seed": -1},
    "canary": {"inclusion_seed": -1},
    "privacy": {"audit_canaries": 0, "audit_beta": 0.05},
}
"""Keys added after runs were first kept, with the value that does what runs did before
them: at that value they are left out of :func:`config_hash` (as is an ``[audit]``
without references), so folders of earlier runs stay complete."""


def _world_seed_resolved(raw: dict[str, Any], seed: int) -> None:
    """``data.seed`` as the world seed it stands for (-1 and the seed itself are one
    world), so the two spellings share training and a hash."""
    data = raw.get("data", {})
    if data.get("seed", -1) in (-1, seed):
        data["seed"] = -1


def digest(raw: Any) -> str:
    """A short stable digest of plain data (a config's dict form or any part of it)."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def training_key(config: ExperimentConfig) -> str:
    """Identifies what a run shares with others: data, federation, training, history,
    roles and requests, with the seed. Runs with the same key train once."""
    raw = config.to_dict()
    _world_seed_resolved(raw, config.seed)
    for section in POST_TRAINING_SECTIONS:
        raw.pop(section, None)
    if config.privacy.mode != "local":
        # Under local DP each client keeps one privacy account per phase: two runs that
        # unlearn with differently set methods in one federation would add up their
        # phases' steps, so they do not share one.
        unlearning = raw.get("unlearning", {})
        for key in [
            k for k, v in unlearning.items() if isinstance(v, dict) or k in POST_TRAINING_KEYS
        ]:
            unlearning.pop(key)
    return digest(raw)


def config_hash(config: ExperimentConfig) -> str:
    """A digest of the full resolved config but :data:`MACHINE_KEYS`: two runs with the
    same hash compute the same thing."""
    raw = config.to_dict()
    for section, keys in MACHINE_KEYS.items():
        for key in keys:
            raw.get(section, {}).pop(key, None)
    for section, values in SAME_FIGURES_KEYS.items():
        raw.get(section, {}).update(values)
    _world_seed_resolved(raw, config.seed)
    for section, defaults in ADDED_KEYS.items():
        for key, default in defaults.items():
            if raw.get(section, {}).get(key) == default:
                raw[section].pop(key)
    if config.audit.references == 0:
        raw.pop("audit", None)
    return digest(raw)


def method_key(method: HasOptions) -> str:
    """Identifies a method run: its class and options (two configs asking for the same
    method with the same options share its result)."""
    options = json.dumps(method.options(), sort_keys=True, default=str)
    return f"{type(method).__module__}.{type(method).__qualname__}:{options}"


def run_id(params: Mapping[str, Any], seed: int) -> str:
    """A sweep run's folder name, readable and stable: the seed and a digest of the grid
    values. The base config is not part of it; an edited base reuses the folder and the
    changed :func:`config_hash` marks it stale."""
    hashed = hashlib.sha256(json.dumps([params, seed], sort_keys=True).encode()).hexdigest()
    return f"seed{seed}-{hashed[:10]}"

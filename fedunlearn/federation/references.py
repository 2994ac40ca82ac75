"""Reference federations: the run trained again with other training randomness, on the
same clients (``[audit]``, docs/calibrated.md).

The server reaches a reference's clients through :func:`reference_grid`, which tags
every message with :func:`reference_tag`; a ClientApp that sees the tag rebuilds the
reference's config from the run's with :func:`reference_config` (the index, and whether
the references are online, is all it needs: runs of a group share training but may
differ in ``[audit]``, and the clients hold the group's first config), so the same
grid, Ray actors or SuperNodes serve the run and its references.
"""

from __future__ import annotations

from flwr.serverapp import Grid

from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.federation.tagged_grid import TaggedGrid
from fedunlearn.seeding import derive_seed

__all__ = ["REFERENCE_MARK", "reference_config", "reference_grid", "split_reference_tag"]

REFERENCE_MARK = "#reference-"
"""What a message's experiment tag carries after the run's own tag: ``#reference-<k>``,
with ``OFFLINE_MARK`` after it for offline references."""

OFFLINE_MARK = "-offline"


def reference_config(
    config: ExperimentConfig, index: int, online: bool | None = None
) -> ExperimentConfig:
    """The config of reference federation ``index`` of ``config``.

    Its seed is ``derive_seed(world seed, "reference", index)`` and its ``data.seed``
    the run's world seed (same split, partition and canaries): runs on one world that
    differ only in their own seed have the same references (kept and reused:
    :mod:`fedunlearn.run.reference_store`); online
    (``audit.online`` and memorization canaries) ``canary.inclusion_seed`` is
    ``derive_seed(world seed, "inclusion", index)``, so each reference plants its own
    random half of the canaries. It has no references, no leakage audit, no figures,
    and keeps its history under its own folder (``history.path = ""``); its
    ``[attack]``, ``[release]`` and ``[audit]`` options are the defaults (they change
    nothing in training), so runs differing only in them share references.

    Parameters
    ----------
    config : ExperimentConfig
        The run whose references these are.
    index : int
        Which reference, ``0 <= index < audit.references`` (any ``>= 0`` is accepted:
        clients rebuild a reference's config from its index alone).
    online : bool, optional
        Whether references plant random halves of the canaries (None:
        ``config.audit.online``).

    Raises
    ------
    ValueError
        ``index`` is negative.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"reference index must be an integer >= 0, got {index!r}")
    world = config.world_seed
    raw = config.to_dict()
    raw["name"] = f"{config.name}-reference{index}"
    raw["seed"] = derive_seed(world, "reference", index)
    raw["data"]["seed"] = world
    canary = config.canary
    online = config.audit.online if online is None else online
    if online and canary.enabled and canary.memorization > 0:
        raw["canary"]["inclusion_seed"] = derive_seed(world, "inclusion", index)
    # What only the audit reads (attack, release, audit options) is left at its
    # defaults: runs that differ in those alone share their references.
    raw["attack"], raw["release"] = {"enabled": False}, {}
    raw["audit"] = {"references": 0, "online": online}
    raw["output"]["figures"] = False
    raw["output"]["run_dir"] = ""
    raw["history"]["path"] = ""
    return type(config).from_dict(raw, source=f"reference federation {index}")


def reference_grid(grid: Grid, index: int, online: bool) -> TaggedGrid:
    """``grid`` with every message tagged for reference federation ``index``, online or
    not (after the run's own tag when ``grid`` already tags, as in a sweep)."""
    mark = f"{REFERENCE_MARK}{index}{'' if online else OFFLINE_MARK}"
    if isinstance(grid, TaggedGrid):
        return TaggedGrid(grid.inner, f"{grid.tag}{mark}")
    return TaggedGrid(grid, mark)


def split_reference_tag(tag: str) -> tuple[str, int | None, bool]:
    """(the run's own tag, the reference index or None, online) of a message's
    experiment tag.

    Raises
    ------
    ValueError
        The tag names a reference but its index is not an integer >= 0.
    """
    base, mark, index = tag.partition(REFERENCE_MARK)
    if not mark:
        return tag, None, True
    online = not index.endswith(OFFLINE_MARK)
    index = index.removesuffix(OFFLINE_MARK)
    if not index.isdigit():
        raise ValueError(f"experiment tag {tag!r}: reference index {index!r} is not an integer")
    return base, int(index), online

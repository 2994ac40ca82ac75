"""What the calibrated audit costs: the same experiment without and with reference
federations and the one-run DP audit, timed side by side in one run.

    python benchmarks/audit_cost.py [--references 2 4] [--scenario small|default]

Every row is one whole run (``simulate``, inline backend, this process) of the same
experiment: training, FedEraser, retraining and the leakage audit. The rows add:

* ``references = K``: K reference federations (``[audit] references``), each trained,
  retrained and unlearned like the run itself, and the calibrated attacks scored on them;
* ``dp audit``: local DP-SGD with the one-run audit's canaries
  (``privacy.audit_canaries``), against the same DP run without them.

It prints each run's seconds and its ratio to the row it adds to. ``--scenario small``
(the default) is the digits MLP of the tests, seconds per run; ``default`` is the
default CNN experiment with the leakage audit, minutes per run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fedunlearn.apps.simulation import simulate
from fedunlearn.config.experiment import ExperimentConfig
from fedunlearn.config.presets import SMALL_DIGITS

COMMON = [
    "simulation.backend=inline",
    "unlearning.methods=['federaser']",
    "attack.enabled=true",
    "output.figures=false",
]


def timed(overrides: list[str], expect: str = "") -> float:
    """Seconds of one whole run of the experiment with ``overrides``; it must have
    produced the attack ``expect`` (a skipped audit would time nothing)."""
    with tempfile.TemporaryDirectory() as out:
        config = ExperimentConfig().with_overrides([*overrides, f"output.dir={out}"])
        started = time.perf_counter()
        result = simulate(config, show_progress=False)
        seconds = time.perf_counter() - started
    attacks = result.metrics.attacks
    if expect and (attacks is None or expect not in attacks.metrics):
        raise RuntimeError(f"the run with {overrides[-1]} produced no {expect!r} figures")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--canaries", type=int, default=500)
    parser.add_argument("--scenario", choices=("small", "default"), default="small")
    args = parser.parse_args()
    base = [*(SMALL_DIGITS if args.scenario == "small" else []), *COMMON]
    dp = [*base, "privacy.mode=local", "privacy.target_epsilon=8"]

    rows: list[tuple[str, float, float]] = []
    timed(base)  # warm-up: imports, the world, first calls; not timed
    plain = timed(base)
    rows.append(("leakage audit, no references", plain, 1.0))
    for count in args.references:
        seconds = timed([*base, f"audit.references={count}"], expect="lira_offline")
        rows.append((f"references = {count}", seconds, seconds / plain))
    timed(dp)  # warm-up of the DP path
    private = timed(dp)
    rows.append(("local DP, no DP audit", private, 1.0))
    audited = timed([*dp, f"privacy.audit_canaries={args.canaries}"])
    rows.append((f"local DP, dp audit ({args.canaries} canaries)", audited, audited / private))

    print(f"scenario: {args.scenario}; each row one whole run (inline backend)")
    print(f"{'run':<44}{'seconds':>10}{'x its base':>12}")
    for name, seconds, ratio in rows:
        print(f"{name:<44}{seconds:>10.1f}{ratio:>12.2f}")


if __name__ == "__main__":
    main()

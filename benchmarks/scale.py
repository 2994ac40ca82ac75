"""How a run scales with the number of clients: time per round, memory, history bytes.

    python benchmarks/scale.py [--clients 10 100 1000] [--rounds 50] [--fraction 0.1]
                               [--examples 40] [--precision float32] [--compress]
    python benchmarks/scale.py --storage [--clients 100] [--rounds 20]

Each size runs in a fresh process on the Ray backend: training (``--fraction`` of the
clients sampled per round, at least 2), a disk history, then FedEraser and retraining.
Every client holds ``--examples`` training examples (scikit-learn's digits resampled
with noise, so the data grows with the clients and each client's work stays the same).
The script prints, per size: clients sampled per round, seconds per training round,
the server process's peak RSS (``ru_maxrss``), the whole run's peak memory (the sum of
the proportional set size, PSS, of every process of the run: server, Ray's daemons and
actors, sampled every 0.5 s), and the history's bytes on disk.

``--storage`` runs one size with each history storage (full, float16, full
compressed, float16 compressed) and prints the history bytes and FedEraser's result
next to full precision's (float32): accuracy, canary attack success, and the L2
distance between its model and full precision's FedEraser model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def synthetic_digits(path: Path, examples: int, seed: int = 0) -> None:
    """``examples`` 8x8 digits: scikit-learn's 1,797 resampled with Gaussian noise."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(digits.images), size=examples)
    x = digits.images[pick] / 16.0 + rng.normal(0.0, 0.1, size=(examples, 8, 8))
    np.savez(path, x=np.clip(x, 0.0, 1.0).astype(np.float32), y=digits.target[pick])


def overrides(args: argparse.Namespace, clients: int, work: Path) -> list[str]:
    data = work / f"digits-{clients}.npz"
    # The server's test split (20%) on top of the clients' training examples.
    synthetic_digits(data, int(clients * args.examples / 0.8))
    return [
        f"name=scale-{clients}",
        "data.dataset=npz",
        f"data.path={data}",
        "simulation.backend=ray",
        f"federation.num_clients={clients}",
        f"federation.fraction_train={args.fraction}",
        "federation.min_train_clients=2",
        "federation.connect_timeout=600",
        "model.name=mlp",
        "model.hidden=64",
        f"training.rounds={args.rounds}",
        "training.local_epochs=1",
        "training.batch_size=16",
        "history.storage=disk",
        f"history.delta_t={args.delta_t}",
        f"history.precision={args.precision}",
        f"history.compress={str(args.compress).lower()}",
        'unlearning.methods=["federaser"]',
        f"output.dir={args.keep or work / 'results'}",
        "output.figures=false",
    ]


def run_one(config_args: list[str], out: Path) -> None:
    """In the child process: run the experiment, write what the parent prints."""
    import csv

    from fedunlearn.apps.simulation import simulate
    from fedunlearn.config.experiment import ExperimentConfig

    result = simulate(ExperimentConfig().with_overrides(config_args), show_progress=False)
    with (result.run_dir / "rounds.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["phase"] == "training"]
    seconds = [float(r["seconds"]) for r in rows if int(r["round"]) > 0]
    history = result.run_dir / "history"
    if "federaser" not in result.metrics.models:
        raise RuntimeError(f"FedEraser did not finish: see {result.run_dir}")
    metrics = result.metrics.models["federaser"]
    final = {k: v.tolist() for k, v in result.models["federaser"].items()}
    out.write_text(
        json.dumps(
            {
                "status": result.metrics.status,
                "sampled": max(int(float(r["clients"])) for r in rows if int(r["round"]) > 0),
                "round_seconds": (seconds[-1] - seconds[0]) / max(1, len(seconds) - 1),
                "history_bytes": sum(p.stat().st_size for p in history.iterdir()),
                "federaser": metrics,
                "federaser_model": final,
            }
        )
    )


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(config_args: list[str], work: Path) -> dict:
    """Run one size in a child process; its figures plus peak memory."""
    out = work / "figures.json"
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(out), *config_args],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    peak = [0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], sum(_pss(p) for p in _tree(child.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    if child.returncode != 0 or not out.exists():
        raise RuntimeError(f"the run {config_args[0]} failed (exit {child.returncode})")
    figures = json.loads(out.read_text())
    figures.update(
        seconds=time.perf_counter() - started,
        server_peak=usage.ru_maxrss * 1024,
        run_peak=peak[0],
    )
    return figures


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        run_one(sys.argv[3:], Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--examples", type=int, default=40, help="training examples per client")
    parser.add_argument("--delta-t", type=int, default=2)
    parser.add_argument("--precision", default="full", choices=("full", "float16"))
    parser.add_argument("--compress", action="store_true")
    parser.add_argument("--storage", action="store_true", help="compare history storages")
    parser.add_argument("--keep", type=Path, default=None, help="keep run folders here")
    args = parser.parse_args()
    if args.storage:
        storage_study(args)
        return
    args.clients = args.clients or [10, 100, 1000]
    args.rounds = args.rounds or 50
    print(
        f"{args.rounds} rounds, {args.fraction:.0%} of clients per round (at least 2), "
        f"{args.examples} examples per client, MLP, disk history ({args.precision}"
        f"{', compressed' if args.compress else ''}), then FedEraser and retraining; Ray"
    )
    print(f"{'clients':>8} {'sampled':>8} {'s/round':>8} {'server peak':>12} "
          f"{'run peak (PSS)':>15} {'history':>10} {'run':>8}")  # fmt: skip
    for clients in args.clients:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            f = measure(overrides(args, clients, work), work)
        print(
            f"{clients:>8} {f['sampled']:>8} {f['round_seconds']:>8.2f} "
            f"{f['server_peak'] / 2**30:>10.2f} G {f['run_peak'] / 2**30:>13.2f} G "
            f"{f['history_bytes'] / 2**20:>8.1f} M {f['seconds']:>7.0f}s",
            flush=True,
        )


def storage_study(args: argparse.Namespace) -> None:
    clients = (args.clients or [100])[0]
    args.rounds = args.rounds or 20
    print(f"{clients} clients, {args.rounds} rounds: FedEraser from each history storage")
    print(f"{'storage':>22} {'history':>10} {'accuracy':>9} {'canary ASR':>11} "
          f"{'L2 to full':>11}")  # fmt: skip
    base = None
    for precision, compress in (("full", False), ("float16", False),
                                ("full", True), ("float16", True)):  # fmt: skip
        args.precision, args.compress = precision, compress
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            f = measure(overrides(args, clients, work), work)
        model = {k: np.asarray(v) for k, v in f["federaser_model"].items()}
        base = base or model
        l2 = float(np.sqrt(sum(np.sum((model[k] - base[k]) ** 2) for k in base)))
        name = precision + (", compressed" if compress else "")
        m = f["federaser"]
        print(
            f"{name:>22} {f['history_bytes'] / 2**20:>8.2f} M {m['clean_accuracy']:>9.3f} "
            f"{m['attack_success_rate']:>11.3f} {l2:>11.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()

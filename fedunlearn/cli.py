"""The ``fedunlearn`` command.

fedunlearn run [CONFIG.toml] [--set key=value ...]   run an experiment
fedunlearn compare CONFIG.toml --seeds 0 1 2         methods side by side over seeds
fedunlearn sweep SWEEP.toml                          a grid of runs, resumable
fedunlearn report RESULTS_DIR                        Markdown report of a sweep
fedunlearn audit RUN_DIR [--set attack.key=value]    redo a finished run's leakage audit
fedunlearn check CONFIG.toml                         validate a config, run nothing
fedunlearn config                                    every key, default and meaning
fedunlearn app [CONFIG.toml] --out DIR               the experiment as a Flower app
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

# Light imports only: torch, Flower and scikit-learn are imported where a command needs
# them (``fedunlearn run`` imports them while Ray starts: apps/ray_start.py).
from fedunlearn.config.experiment import ExperimentConfig, describe


def _load(path: str | None, overrides: list[str]) -> ExperimentConfig:
    config = ExperimentConfig.from_toml(path) if path else ExperimentConfig()
    return config.with_overrides(overrides) if overrides else config


def _sweep(args: argparse.Namespace) -> int:
    from fedunlearn.studies.plan import Sweep
    from fedunlearn.studies.sweep import run_sweep

    sweep = Sweep.from_toml(args.config, args.overrides)
    if args.plan:
        for run in sweep.plan():
            done = "complete" if run.is_complete() else "to run"
            print(f"{run.run_id}  seed {run.seed}  {run.params}  ({done})")
        return 0
    result = run_sweep(sweep, show_progress=args.progress)
    return 1 if result.failed else 0


def input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the input is wrong (a key, a file, a plugin, the data): exit 2."""
    from fedunlearn.config.options import ConfigError
    from fedunlearn.data.datasets import DataError
    from fedunlearn.data.partition import PartitionError
    from fedunlearn.history import HistoryError
    from fedunlearn.plugins import PluginError
    from fedunlearn.reporting.folder import RunFolderError
    from fedunlearn.studies.report import ReportError
    from fedunlearn.studies.sweep import SweepBusyError

    return (
        ConfigError,
        FileNotFoundError,
        FileExistsError,
        ReportError,
        DataError,
        PartitionError,
        PluginError,
        HistoryError,
        SweepBusyError,
        RunFolderError,
    )


def _audit(args: argparse.Namespace) -> int:
    from fedunlearn.run.reaudit import reaudit

    done = reaudit(args.run_dir, args.overrides)
    print(f"re-audited {done.run_dir}: rewrote {', '.join(done.written)}")
    markdown = done.run_dir / "attacks.md"
    if markdown.exists():
        print(markdown.read_text())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedunlearn", description="Simulate federated unlearning on Flower."
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment (the default one without CONFIG)")
    run.add_argument("config", nargs="?", help="experiment TOML file")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set training.rounds=5 (repeatable)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress or table")
    comp = sub.add_parser(
        "compare", help="run a scenario over several seeds and summarise its methods"
    )
    comp.add_argument("config", nargs="?", help="experiment TOML file")
    comp.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED")
    comp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    comp.add_argument("--out", help="folder for the runs and the summary")
    comp.add_argument("--quiet", action="store_true", help="no per-round progress")
    sweep = sub.add_parser("sweep", help="run a grid over config keys and seeds (resumable)")
    sweep.add_argument("config", help="experiment TOML file with a [sweep] table")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sweep.add_argument("--progress", action="store_true", help="per-round progress of each run")
    sweep.add_argument("--plan", action="store_true", help="list the runs and exit")
    report = sub.add_parser("report", help="write report.md and figures for a sweep's folder")
    report.add_argument("results", help="output folder of `fedunlearn sweep`")
    audit = sub.add_parser(
        "audit",
        help="redo the leakage audit of a finished run from its config.toml and models.npz "
        "(observer attacker; nothing is retrained)",
    )
    audit.add_argument("run_dir", help="a finished run folder")
    audit.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a key of [attack] or [release] for this audit, e.g. "
        "--set attack.negatives=400 (repeatable)",
    )
    check = sub.add_parser("check", help="validate a config and its plugins, run nothing")
    check.add_argument("config", help="experiment TOML file")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sub.add_parser("config", help="print every config key with its default and meaning")
    app = sub.add_parser(
        "app", help="write the experiment as a Flower app folder, for flwr run on a deployment"
    )
    app.add_argument("config", nargs="?", help="experiment TOML file")
    app.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    app.add_argument("--out", required=True, help="new or empty folder for the app")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedunlearn`` console script.

    Exit codes: 0 done; 1 a run failed (one line saying why; ``--debug`` shows the
    traceback); 2 bad input (a key, a file, a plugin, the data); 130 interrupted
    (SIGINT or SIGTERM: the run folders say ``interrupted``, what was computed is kept).
    """
    args = _parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)  # messages wrap in the terminal, not in logs
    if args.command == "config":
        from fedunlearn.run.components import describe_plugins

        print(describe() + "\n" + describe_plugins())
        return 0
    previous = _stop_on_sigterm()
    try:
        try:
            return _dispatch(args)
        except Exception as err:
            if args.debug or not isinstance(err, input_errors()):
                raise
            # escape(): "[section]" in a message is text, not rich markup.
            console.print(f"[red]error:[/] {escape(str(err))}", highlight=False)
            return 2
    except KeyboardInterrupt:
        from fedunlearn.run.experiment import interrupt

        interrupt()
        console.print("interrupted; what was computed is in the run folder")
        return 130
    except Exception as err:  # a run failed: its folder holds the whole story
        if args.debug:
            raise
        console.print(
            f"[red]failed:[/] {escape(f'{type(err).__name__}: {err}'.splitlines()[0])} "
            "(the run folder's error.txt has the details; --debug shows the traceback)",
            highlight=False,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """SIGTERM stops a run as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "report":
        from fedunlearn.studies.report import write_report

        print(f"report: {write_report(args.results)}")
        return 0
    if args.command == "audit":
        return _audit(args)
    config = _load(args.config, args.overrides)
    if args.command == "app":
        from fedunlearn.apps.flower_app import write_flower_app
        from fedunlearn.run.check import check_experiment

        check_experiment(config)
        path = write_flower_app(config, args.out)
        print(f"wrote {path}; run it with: flwr run {path.parent} <superlink> --stream")
        return 0
    if args.command == "check":
        from fedunlearn.run.check import check_experiment

        lines = check_experiment(config)
        print(f"{args.config}: valid")
        for line in lines:
            print(f"  {line}")
        return 0
    if args.command == "compare":
        from fedunlearn.studies.compare import compare

        out = Path(args.out) if args.out else None
        compare(config, args.seeds, out_dir=out, show_progress=not args.quiet)
        return 0
    from fedunlearn.apps.ray_start import start_ray_while_importing

    modules = ["fedunlearn.apps.simulation"]
    if config.simulation.backend == "ray":
        modules.append("flwr.simulation")  # Flower's engine, imported when the run starts
    start_ray_while_importing(config, modules)
    from fedunlearn.apps.simulation import simulate

    result = simulate(config, show_progress=not args.quiet)
    if result.metrics.status != "complete":  # a part failed: say so in the exit code too
        failed = ", ".join(result.metrics.errors) or "a part"
        print(f"{result.metrics.status}: {failed} failed; see {result.run_dir / 'errors'}")
        return 1
    return 0


def console() -> None:
    """The console script: :func:`main`, then exit with its code.

    The exit skips the interpreter's teardown of the extension modules: with torch and
    Ray loaded it spent 1.9 and 3.4 s (two small Ray runs) in C code after everything
    was written (faulthandler showed no Python frame), time a user waits for nothing. Threads still
    working are waited for and exit handlers run first, as a normal exit does. After
    an interrupt (130) the libraries' threads (Flower's, torch's) may still be winding
    down, and tearing down the interpreter under them aborted the process (exit -6 in
    about 2 of 5 SIGTERMs, measured); that exit does not wait for them.
    """
    code = main()
    if code != 130:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()

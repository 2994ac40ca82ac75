"""Bad input and faults, each case a probe found: what the platform now does instead.

Security (forged commitments, impostors, repeated requests, paths), silent garbage
(non-finite numbers, diverged or collapsed models, crashed methods, damaged histories)
and half-written folders (state from the first moment, interruption, concurrent sweeps,
one-line errors).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.apps.simulation import simulate
from fedunlearn.cli import main
from fedunlearn.config.options import ConfigError
from fedunlearn.history import DiskHistory, HistoryError, MemoryHistory
from fedunlearn.reporting.folder import run_state, write_status
from fedunlearn.reporting.schema import RunMetrics
from fedunlearn.studies.plan import Sweep
from fedunlearn.studies.sweep import SweepBusyError, run_sweep, sweep_lock
from tests.conftest import small_config

LEARNS = ("training.local_epochs=2", "training.learning_rate=0.1")


def write_config(tmp_path: Path, *overrides: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(small_config(tmp_path, "output.figures=false", *overrides).to_toml())
    return path


# ---------------------------------------------------------------- security


def test_a_padded_commitment_cannot_have_another_clients_records_unlearned(
    tmp_path: Path,
) -> None:
    config = small_config(tmp_path, 'roles.3="tests.roles:Padder"', "unlearning.requesters=[]")
    metrics = simulate(config, show_progress=False).metrics
    (decision,) = metrics.requests
    assert not decision["accepted"] and decision["check"] == "committed_records"
    assert "committed to" in decision["reason"] and "but trains on" in decision["reason"]
    assert metrics.models == {} and metrics.forgotten == {"clients": [], "records": {}}


def test_a_client_claiming_another_clients_id_is_refused_not_obeyed(tmp_path: Path) -> None:
    config = small_config(tmp_path, 'roles.3="tests.roles:Impostor"')
    result = simulate(config, show_progress=False)
    assert result.metrics.status == "complete"
    assert len(result.metrics.refused_nodes) == 2  # client 1 and the impostor
    assert all("all claim client id 1" in why for why in result.metrics.refused_nodes.values())
    assert result.history.clients == [0, 2]  # trained without either
    assert result.metrics.forgotten_clients == [0]


def test_repeated_requests_are_merged_into_one_unlearning(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        'roles.2="tests.roles:Repeater"',
        "unlearning.requesters=[]",
        "unlearning.sequential=true",
        'unlearning.methods=["finetune"]',
    )
    metrics = simulate(config, show_progress=False).metrics
    assert [d["accepted"] for d in metrics.requests] == [True, False, False]
    assert {d["check"] for d in metrics.requests[1:]} == {"duplicate"}
    assert len(metrics.stages) == 1  # one unlearning, not three
    assert metrics.cost.methods["retrain"]["rounds"] == 4


def test_the_default_rate_limit_stops_a_flood(tmp_path: Path) -> None:
    config = small_config(
        tmp_path,
        'roles.2="malicious-unlearner"',
        'roles.malicious-unlearner.behaviour="flood"',
        "roles.malicious-unlearner.records=8",
        "roles.malicious-unlearner.requests=8",
        "unlearning.requesters=[]",
        'unlearning.methods=["finetune"]',
    )
    assert config.defense.max_requests == 5
    metrics = simulate(config, show_progress=False).metrics
    assert sum(d["accepted"] for d in metrics.requests) == 5
    assert {d["check"] for d in metrics.requests if not d["accepted"]} == {"rate_limit"}


@pytest.mark.parametrize("name", ["../../x", "/abs", ".hidden", "a/b"])
def test_a_run_name_is_a_folder_name_never_a_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="name must be letters, digits"):
        small_config(tmp_path, f"name={json.dumps(name)}")


# ---------------------------------------------------------------- silent garbage


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_numbers_are_refused_by_name(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="training.learning_rate must be a finite number"):
        small_config(tmp_path, f"training.learning_rate={value}")


def test_a_diverging_training_fails_the_run_saying_so(tmp_path: Path, capsys) -> None:
    path = write_config(
        tmp_path, "training.learning_rate=1e30", "output.run_dir=" + str(tmp_path / "run")
    )
    assert main(["run", str(path), "--quiet"]) == 1
    assert "non-finite weights" in capsys.readouterr().err
    assert run_state(tmp_path / "run") == "failed"
    assert "training diverged" in (tmp_path / "run" / "error.txt").read_text()


def test_a_crashed_or_collapsed_method_makes_the_run_partial(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    path = write_config(
        tmp_path,
        *LEARNS,
        'unlearning.methods=["tests.methods:Broken", "tests.methods:Zeros", "federaser"]',
        f"output.run_dir={run}",
    )
    assert main(["run", str(path), "--quiet"]) == 1
    metrics = RunMetrics.load(run)
    assert metrics.status == "partial" and run_state(run) == "partial"
    assert "broken on purpose" in metrics.errors["broken"]
    assert metrics.errors["zeros"].startswith("collapsed: clean accuracy")
    assert "federaser" not in metrics.errors
    assert "partial: broken, zeros failed" in capsys.readouterr().out
    # A sweep would redo it: only complete runs are skipped.


def test_a_tampered_or_nan_history_is_refused_by_name(tmp_path: Path) -> None:
    history = DiskHistory(tmp_path / "h", delta_t=1)
    model = {"w": np.ones((2, 2), np.float32)}
    for t in (1, 2):
        history.record(t, model, {0: {"w": model["w"] * t}}, {0: 10}, [0])
    history.set_final_model(model)
    # Rescaled on disk: the checksum no longer matches.
    file = tmp_path / "h" / "round-00002.npz"
    with np.load(file) as npz:
        payload = {k: npz[k] * 10 for k in npz.files}
    np.savez(file, **payload)
    with pytest.raises(HistoryError, match="round-00002.npz was changed after it was written"):
        DiskHistory.open(tmp_path / "h")[2]
    # NaN written by a (broken) training: caught on read even with a valid checksum.
    broken = MemoryHistory()
    broken.record(1, model, {0: {"w": np.full((2, 2), np.nan, np.float32)}}, {0: 10}, [0])
    saved = broken.save(tmp_path / "nan")
    with pytest.raises(HistoryError, match="client 0's update in round 1 has non-finite values"):
        DiskHistory.open(saved.path)[1]
    # A history kept for another model does not fit.
    with pytest.raises(HistoryError, match="does not fit the model"):
        history.check_fits({"w": np.ones((3, 3), np.float32)})


def test_option_spellings_and_attribute_names_do_not_lose_options(tmp_path: Path) -> None:
    from fedunlearn.config.identity import method_key
    from fedunlearn.run.components import resolve_components

    keys = set()
    for spelling, alpha in (("tests.methods:Renamed", 0.25), ("tests.methods.Renamed", 0.5)):
        config = small_config(
            tmp_path,
            'unlearning.methods=["tests.methods.Renamed"]',  # selected one way, set either way
            f'unlearning."{spelling}".alpha={alpha}',
        )
        method = resolve_components(config).methods["renamed"]
        assert method.a == alpha and method.options() == {"alpha": alpha}
        keys.add(method_key(method))
    assert len(keys) == 2  # two option values, two identities (a sweep never mixes them)


# ---------------------------------------------------------------- folders and errors


def test_a_run_folder_says_running_from_the_first_moment_and_interrupted_when_killed(
    tmp_path: Path,
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    run = tmp_path / "run"
    run.mkdir()
    assert run_state(run) == "unknown"
    write_status(run, "running")
    assert run_state(run) == "running"  # this process lives
    record = json.loads((run / "status.json").read_text())
    record["pid"] = int(dead.stdout)  # as after kill -9
    (run / "status.json").write_text(json.dumps(record))
    assert run_state(run) == "interrupted"


def test_sigterm_stops_a_run_cleanly_and_its_folder_says_interrupted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = write_config(tmp_path, "training.rounds=200", f"output.run_dir={run}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedunlearn.cli", "run", str(path), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 60
    while run_state(run) != "running" or not (run / "config.toml").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(2)  # well into training
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert run_state(run) == "interrupted"
    assert (run / "rounds.csv").is_file() and (run / "error.txt").is_file()


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    base = small_config(tmp_path)
    sweep = Sweep.from_table(
        {"seeds": [0], "grid": {"training.rounds": [2]}, "out": str(tmp_path / "sw")}, base
    )
    (tmp_path / "sw").mkdir()
    with sweep_lock(tmp_path / "sw"), pytest.raises(SweepBusyError, match=f"pid {os.getpid()}"):
        run_sweep(sweep)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["seed=-1"], "seed must be >= 0, got -1"),
        (["data.path=/tmp/x.npz"], "data.path = '/tmp/x.npz' is not read when data.dataset"),
        (["model.name=no_such.module:factory"], "cannot import module 'no_such.module'"),
        (
            ['unlearning.methods=["tests.faulty_plugin:Method"]'],
            "importing module 'tests.faulty_plugin'",
        ),
    ],
)
def test_expected_errors_are_one_line_and_exit_code_2(
    tmp_path: Path, capsys, overrides: list[str], message: str
) -> None:
    path = write_config(tmp_path)
    sets = [a for o in overrides for a in ("--set", o)]
    assert main(["run", str(path), "--quiet", *sets]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unwritable_output_folder_is_named(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = write_config(tmp_path, f"output.dir={blocker / 'results'}")
    assert main(["run", str(path), "--quiet"]) == 2
    assert "output.dir: cannot write the run folder" in capsys.readouterr().err

"""The ``fedunlearn`` command: every subcommand, its output and its exit code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fedunlearn.cli import main
from fedunlearn.config.experiment import SECTIONS
from fedunlearn.plugins import available
from fedunlearn.reporting.schema import RunMetrics
from tests.conftest import small_config

TINY = [
    "training.rounds=2",
    "history.delta_t=1",
    'unlearning.methods=["rollback"]',
    "output.figures=false",
]


def write_config(tmp_path: Path, *overrides: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(small_config(tmp_path, *TINY, *overrides).to_toml())
    return path


def test_config_lists_every_key_its_default_and_allowed_values(capsys) -> None:
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    for section, cls in SECTIONS.items():
        assert f"[{section}]" in text
        for f in dataclasses.fields(cls):
            if not f.metadata.get("table"):
                assert f"\n{f.name} = " in text, f"{section}.{f.name}"
    assert 'partition = "iid"   # ' in text
    assert '(one of "iid", "dirichlet", "pathological", "natural")' in text
    assert "(> 0, <= 0.5)" in text  # bounds, for keys without a fixed set
    for method in available("method"):
        assert f"[unlearning.{method}]" in text
    assert "[roles.malicious-unlearner]" in text and 'behaviour = "forge"' in text


def test_check_says_valid_and_runs_nothing(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path)
    assert main(["check", str(path)]) == 0
    assert f"{path}: valid" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_check_names_what_all_leaves_out_and_why(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path, "history.delta_t=2", 'unlearning.methods=["all"]')
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fedrecover will not run: fedrecover needs every round in the history" in out


def test_a_bad_key_is_exit_code_2_with_the_key_and_its_section(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path)
    assert main(["check", str(path), "--set", "unlearning.federaser.r=2"]) == 2
    err = capsys.readouterr().err
    assert "[unlearning.federaser]" in err and "r must be a number in (0, 1]" in err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_writes_a_complete_run_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    assert main(["run", str(path), "--quiet", "--set", "name=cli"]) == 0
    (run,) = (tmp_path / "results").glob("cli-seed0-*")
    metrics = RunMetrics.load(run)
    assert metrics.status == "complete" and set(metrics.models) == {
        "original",
        "rollback",
        "retrain",
    }


def test_sweep_plan_lists_the_runs_and_report_needs_results(tmp_path: Path, capsys) -> None:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text() + '\n[sweep]\nseeds = [0, 1]\n[sweep.grid]\n"training.rounds" = [1, 2]\n'
    )
    assert main(["sweep", str(path), "--plan"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("(to run)" in line for line in lines)
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "has no results.csv" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["compare", "--seeds"], ["sweep"]])
def test_usage_errors_exit_with_argparse_code(command: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--no-such-flag"])
    assert exit_info.value.code == 2


def test_the_console_script_exits_with_mains_code_and_its_output_flushed(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    path = write_config(tmp_path)
    command = [sys.executable, "-m", "fedunlearn.cli", "check", str(path)]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and f"{path}: valid" in ok.stdout
    bad = subprocess.run(
        [*command[:-1], "--set", "training.rounds=0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "training.rounds" in bad.stderr

"""An experiment as a Flower app folder, for ``flwr run`` on a deployment.

Flower takes a run's config from the app's ``pyproject.toml`` and refuses a
``--run-config`` key that is not there, so an experiment with per-client roles
(``[roles] "2" = "malicious-unlearner"``) or method and role options cannot be passed
to fedunlearn's own app on the command line. :func:`write_flower_app` writes a folder
holding only a ``pyproject.toml`` whose components are fedunlearn's installed ServerApp
and ClientApp and whose config is the whole experiment::

    fedunlearn app experiments/malicious_forge.toml --out my-app
    flwr run my-app my-superlink --stream
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomli_w

from fedunlearn.config.experiment import ExperimentConfig

__all__ = ["write_flower_app"]


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def write_flower_app(config: ExperimentConfig, out_dir: str | Path) -> Path:
    """Write ``out_dir/pyproject.toml``: a Flower app running ``config`` with
    fedunlearn's ServerApp and ClientApp (installed on every machine of the deployment).

    Parameters
    ----------
    config : ExperimentConfig
        The experiment, as its run config (lists become ``"a,b"`` strings).
    out_dir : str or Path
        A new or empty folder (a folder holding other files is refused, so nothing of
        the user's is overwritten).

    Returns
    -------
    Path
        The ``pyproject.toml`` written.
    """
    out = Path(out_dir)
    if out.exists() and any(p.name != "pyproject.toml" for p in out.iterdir()):
        raise FileExistsError(f"{out} holds other files: write the app into a new or empty folder")
    flat = config.to_run_config()
    dotted = [k for k in flat if any(part == "" for part in k.split("."))]
    if dotted:
        raise ValueError(f"config keys {dotted} hold an empty part and cannot be a run config")
    name = re.sub(r"[^a-z0-9-]+", "-", f"fedunlearn-{config.name}".lower()).strip("-")
    project = {
        "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
        "project": {
            "name": name,
            "version": "1.0.0",
            "description": f"The fedunlearn experiment {config.name!r} as a Flower app",
            "dependencies": ["fedunlearn"],
        },
        "tool": {
            "hatch": {"build": {"targets": {"wheel": {"packages": ["."]}}}},
            "flwr": {
                "app": {
                    "publisher": "fedunlearn",
                    "components": {
                        "serverapp": "fedunlearn.apps.server_app:app",
                        "clientapp": "fedunlearn.apps.client_app:app",
                    },
                    "config": _nested(flat),
                }
            },
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pyproject.toml"
    path.write_text(
        "# Written by `fedunlearn app`: the experiment below runs with `flwr run` on any\n"
        "# SuperLink whose machines have fedunlearn installed (docs/deployment.md).\n"
        + tomli_w.dumps(project)
    )
    return path

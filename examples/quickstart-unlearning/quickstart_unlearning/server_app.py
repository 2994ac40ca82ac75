"""The ServerApp: a Flower quickstart ServerApp whose strategy line says
``RecordingFedAvg`` instead of ``FedAvg``, plus the lines marked ``fedunlearn`` that
forget client 0 and compare the result with retraining from scratch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from fedunlearn import RecordingFedAvg, audit, unlearn  # fedunlearn
from quickstart_unlearning.task import (
    CANARY_CLIENT,
    TARGET,
    Net,
    evaluate,
    load_partition,
    test_set,
    triggered_test_set,
)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    num_rounds = int(context.run_config["num-server-rounds"])
    lr = float(context.run_config["learning-rate"])
    fraction_evaluate = float(context.run_config["fraction-evaluate"])

    arrays = ArrayRecord(Net().state_dict())
    strategy = RecordingFedAvg(fraction_evaluate=fraction_evaluate, delta_t=2)  # was FedAvg
    result = strategy.start(
        grid=grid,
        initial_arrays=arrays,
        train_config=ConfigRecord({"lr": lr}),
        num_rounds=num_rounds,
        evaluate_fn=global_evaluate,
    )

    # fedunlearn: forget the canary's client with FedEraser, and by retraining
    forget = [CANARY_CLIENT]
    method = str(context.run_config["unlearning-method"])
    unlearned = unlearn(grid, strategy.history, forget=forget, method=method)
    retrained = unlearn(grid, strategy.history, forget=forget, method="retrain")
    images, labels, _ = load_partition(CANARY_CLIENT, len(strategy.history.clients))
    report = audit(
        {"original": result.arrays, method: unlearned.arrays, "retrain": retrained.arrays},
        reference="retrain",
        model_fn=Net,
        test=test_set(),
        forgotten=(images, labels),
        triggered=(triggered_test_set(), TARGET),
    )
    summary = {
        "history": {
            "kept_rounds": strategy.history.rounds,
            "clients": strategy.history.clients,
            "keyed_by": sorted({c["id_from"] for c in strategy.history.meta["clients"].values()}),
        },
        "models": report,
        "client_epochs": {
            "training": float(strategy.cost.client_epochs),
            method: float(unlearned.cost.client_epochs),
            "retrain": float(retrained.cost.client_epochs),
        },
    }
    print(json.dumps(summary, indent=1))
    if context.run_config["results-file"]:
        Path(str(context.run_config["results-file"])).write_text(json.dumps(summary, indent=1))


def global_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Accuracy on the server's test set, and how often the canary's trigger works."""
    model = Net()
    model.load_state_dict(arrays.to_torch_state_dict())
    images, labels = test_set()
    loss, accuracy = evaluate(model, images, labels)
    with torch.no_grad():
        predicted = model(torch.from_numpy(triggered_test_set())).argmax(1).numpy()
    return MetricRecord(
        {"loss": loss, "accuracy": accuracy, "canary": float(np.mean(predicted == TARGET))}
    )

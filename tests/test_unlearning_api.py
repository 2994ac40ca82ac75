"""Unlearning in a user's own Flower app: the quickstart-shaped example's ClientApp
(train and evaluate only), RecordingFedAvg on the strategy line, unlearn() and audit()."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedAvgM

from fedunlearn import (
    ContractError,
    RecordingFedAvg,
    RecordingMixin,
    UnlearningContract,
    audit,
    unlearn,
)
from fedunlearn.federation.inline import run_inline
from fedunlearn.learning.arrays import from_record

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart-unlearning"
sys.path.insert(0, str(EXAMPLE))

from quickstart_unlearning import task  # noqa: E402
from quickstart_unlearning.client_app import app as example_clients  # noqa: E402

CONFIG = {
    "num-server-rounds": 8,
    "fraction-evaluate": 0.0,
    "local-epochs": 2,
    "learning-rate": 0.1,
    "unlearning-method": "federaser",
    "unlearning-contract": True,
    "results-file": "",
}


def serve(
    main: Callable[[Grid], object], clients: ClientApp = example_clients, **config: object
) -> object:
    """Run ``main(grid)`` as a ServerApp against 5 in-process example clients."""
    out: list[object] = []
    app = ServerApp()

    @app.main()
    def _(grid: Grid, context: Context) -> None:
        out.append(main(grid))

    run_inline(app, clients, 5, {**CONFIG, **config}, seed=0)
    return out[0]


def initial() -> ArrayRecord:
    return ArrayRecord(task.Net().state_dict())


def train(grid: Grid, strategy: RecordingMixin, rounds: int = 8) -> ArrayRecord:
    result = strategy.start(
        grid=grid,
        initial_arrays=initial(),
        num_rounds=rounds,
        train_config=ConfigRecord({"lr": 0.1}),
    )
    return result.arrays


def canary_rate(arrays: ArrayRecord) -> float:
    report = audit(
        {"m": arrays},
        reference="m",
        model_fn=task.Net,
        test=task.test_set(),
        forgotten=task.load_partition(0, 5)[:2],
        triggered=(task.triggered_test_set(), task.TARGET),
    )
    return report["m"]["attack_success_rate"]


def test_the_history_fills_keyed_by_partition_id_and_adds_up() -> None:
    def main(grid: Grid) -> RecordingFedAvg:
        strategy = RecordingFedAvg(fraction_evaluate=0.0, delta_t=1)
        train(grid, strategy, rounds=3)
        return strategy

    strategy = serve(main)
    history = strategy.history
    assert history.rounds == [1, 2, 3] and history.clients == [0, 1, 2, 3, 4]
    assert {c["id_from"] for c in history.meta["clients"].values()} == {"partition-id"}
    assert history.aggregation == "weighted-mean"
    assert history.meta["train_config"] == {"lr": 0.1}
    # Each kept round's start plus the weighted mean of its updates is the next start.
    for t in (1, 2):
        kept, after = history[t], history[t + 1].global_model
        total = sum(kept.num_examples.values())
        for key, start in kept.global_model.items():
            mean = sum(u[key] * (kept.num_examples[c] / total) for c, u in kept.updates.items())
            np.testing.assert_allclose(start + mean, after[key], atol=1e-6)
    assert strategy.cost.client_epochs == 30.0  # 5 clients x 3 rounds x 2 epochs, reported


def test_federaser_forgets_the_canary_as_retraining_does_at_a_fraction_of_the_cost() -> None:
    def main(grid: Grid) -> tuple:
        strategy = RecordingFedAvg(fraction_evaluate=0.0, delta_t=2)
        original = train(grid, strategy)
        erased = unlearn(grid, strategy.history, forget=[0], method="federaser")
        retrained = unlearn(grid, strategy.history, forget=[0], method="retrain")
        return original, erased, retrained

    original, erased, retrained = serve(main)
    assert canary_rate(original) > 0.5
    assert canary_rate(erased.arrays) <= canary_rate(retrained.arrays) + 0.1
    assert retrained.cost.client_epochs == 4 * 8 * 2  # 4 clients x 8 rounds x 2 epochs
    # Kept rounds 3, 5, 7 calibrated at r = 0.5 (1 epoch each); round 1's updates reused.
    assert erased.cost.client_epochs == 4 * 3 * 1
    assert erased.details["replayed_rounds"] == [1, 3, 5, 7]


def test_without_the_contract_clients_train_and_methods_needing_more_say_what_to_add() -> None:
    def main(grid: Grid) -> tuple:
        strategy = RecordingFedAvg(fraction_evaluate=0.0, delta_t=2)
        train(grid, strategy, rounds=2)
        history = strategy.history
        node = history.clients[0]
        with pytest.raises(ContractError, match="UnlearningContract in its train handler"):
            unlearn(grid, history, forget=[node], method="federaser")
        with pytest.raises(ContractError, match="gradient ascent"):
            unlearn(grid, history, forget=[node], method="pga")
        with pytest.raises(ValueError, match=r"clients \[0\] never trained in this history"):
            unlearn(grid, history, forget=[0], method="retrain")
        return history, unlearn(grid, history, forget=[node], method="retrain")

    history, retrained = serve(main, **{"unlearning-contract": False})
    assert {c["id_from"] for c in history.meta["clients"].values()} == {"node-id"}
    assert history.clients == sorted(grid_node for grid_node in history.client_nodes)
    assert retrained.cost.rounds == 2
    assert np.isnan(retrained.cost.client_epochs)  # never reported: unknown, not guessed


def test_the_strategy_line_trains_exactly_as_flowers_fedavg() -> None:
    def main(grid: Grid) -> tuple:
        random.seed(3)  # Flower samples with the random module
        plain = train(grid, FedAvg(fraction_train=0.6, fraction_evaluate=0.0), rounds=3)
        random.seed(3)
        strategy = RecordingFedAvg(fraction_train=0.6, fraction_evaluate=0.0)
        recorded = train(grid, strategy, rounds=3)
        return plain, recorded, strategy.history

    plain, recorded, history = serve(main)
    # The same clients, the same training; the sum runs in client-id order (not reply
    # arrival order), so float32 rounding may differ in the last place.
    for key, value in from_record(plain).items():
        np.testing.assert_allclose(value, from_record(recorded)[key], rtol=0, atol=1e-6)
    assert all(len(s) == 3 for s in history.participation.values())  # int(0.6 * 5)


def test_a_method_sends_the_apps_own_config_plus_its_own_terms() -> None:
    seen: list[dict] = []
    spy = ClientApp()

    @spy.train()
    def spy_train(msg: Message, context: Context) -> Message:
        seen.append(dict(msg.content["config"]))
        return example_clients(msg, context)

    def main(grid: Grid) -> None:
        strategy = RecordingFedAvg(fraction_evaluate=0.0, delta_t=2)
        train(grid, strategy, rounds=2)
        seen.clear()
        unlearn(grid, strategy.history, forget={1: [5, 9]}, method="finetune")

    serve(main, clients=spy)
    assert seen and all(c["lr"] == 0.1 for c in seen)  # the app's own key, every round
    assert {c["unlearn.phase"] for c in seen} == {"finetune"}
    owner = [c for c in seen if c["unlearn.exclude-records"]]
    assert owner and all(c["unlearn.exclude-records"] == [5, 9] for c in owner)


def test_a_server_optimizer_history_is_refused_by_replay_methods() -> None:
    class RecordingFedAvgM(RecordingMixin, FedAvgM):
        pass

    def main(grid: Grid) -> tuple:
        strategy = RecordingFedAvgM(fraction_evaluate=0.0, server_momentum=0.9, delta_t=1)
        train(grid, strategy, rounds=2)
        with pytest.raises(ValueError, match="FedAvgM aggregation"):
            unlearn(grid, strategy.history, forget=[0], method="federaser")
        return unlearn(grid, strategy.history, forget=[0], method="retrain", strategy=strategy)

    retrained = serve(main)
    assert retrained.cost.rounds == 2


def test_the_contract_round_trips_and_keeps_what_it_should() -> None:
    terms = UnlearningContract("calibrate", 0.5, (3, 7))
    msg_config = ConfigRecord({"lr": 0.1, **terms.to_config()})
    read = UnlearningContract.from_config(msg_config)
    assert read == terms and read.asks_more
    assert read.epochs(4) == 2.0
    np.testing.assert_array_equal(read.keep([1, 3, 5, 7]), [True, False, True, False])
    assert UnlearningContract.from_config({}) == UnlearningContract()
    assert not UnlearningContract().asks_more
    with pytest.raises(ValueError, match="epochs-scale"):
        UnlearningContract.from_config({"unlearn.epochs-scale": 0})
    assert terms.reply(partition_id=3, epochs=2.0) == {
        "unlearn.contract": 1,
        "partition-id": 3,
        "epochs": 2.0,
    }
    RecordDict()

"""Reference federations (``[audit]``) and the calibrated attacks they feed: the world
seed apart from the training seed, the canaries' inclusion, the references' configs
and tags, and runs whose calibrated figures are recomputed from the files they leave
with the pure functions and scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from sklearn.metrics import roc_auc_score

from fedunlearn.apps.client_app import experiment_of
from fedunlearn.attacks.access import FullAccess
from fedunlearn.attacks.calibrated import LiRA, ULiRA, client_scores, logit_confidence
from fedunlearn.attacks.forgetting import forgetting_report
from fedunlearn.attacks.rmia import RMIA
from fedunlearn.config import ConfigError, ExperimentConfig
from fedunlearn.config.identity import config_hash, training_key
from fedunlearn.data.world import federated_data, planted_positions
from fedunlearn.evaluation.archive import read_attack_scores
from fedunlearn.evaluation.calibrated import (
    CalibratedSettings,
    read_references,
    score_calibrated,
)
from fedunlearn.federation.protocol import EXPERIMENT
from fedunlearn.federation.references import (
    reference_config,
    reference_grid,
    split_reference_tag,
)
from fedunlearn.federation.tagged_grid import TaggedGrid
from fedunlearn.reporting.progress import PhaseProgress
from fedunlearn.run.context import RunContext
from fedunlearn.run.experiment import ExperimentResult
from fedunlearn.run.phases.prepare import Prepare
from fedunlearn.seeding import derive_seed
from tests.conftest import small_config
from tests.test_attack_archive import _recipe

# ---------------------------------------------------------------- world seed


def _context(config: ExperimentConfig) -> RunContext:
    """The run context of ``config`` (no clients needed to build it)."""
    return Prepare(None, config, Path("."), PhaseProgress(enabled=False)).context()  # type: ignore[arg-type]


def _same_world(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    wa, wb = federated_data(a), federated_data(b)
    same_parts = all(
        np.array_equal(wa.client(c).ids, wb.client(c).ids)
        and np.array_equal(wa.client(c).x, wb.client(c).x)
        for c in range(len(wa.clients))
    )
    return (
        same_parts
        and np.array_equal(wa.test.ids, wb.test.ids)
        and np.array_equal(wa.canary_ids, wb.canary_ids)
        and np.array_equal(wa.memorization_ids, wb.memorization_ids)
        and np.array_equal(wa.memorization_holdout.x, wb.memorization_holdout.x)
    )


def test_data_seed_keeps_the_world_and_the_seed_changes_training(tmp_path: Path) -> None:
    run = small_config(tmp_path)
    other_training = small_config(tmp_path, "seed=7", "data.seed=0")
    other_world = small_config(tmp_path, "seed=7")
    assert _same_world(run, other_training)
    assert not _same_world(run, other_world)
    initial = [_context(c).initial for c in (run, other_training)]
    assert any(not np.array_equal(initial[0][k], initial[1][k]) for k in initial[0])
    assert training_key(run) != training_key(other_training)


def test_data_seed_minus_one_and_the_seed_itself_are_one_run(tmp_path: Path) -> None:
    run = small_config(tmp_path, "seed=3")
    spelled = small_config(tmp_path, "seed=3", "data.seed=3")
    assert federated_data(run) is federated_data(spelled)  # one cached world
    assert training_key(run) == training_key(spelled)
    assert config_hash(run) == config_hash(spelled)


def test_new_keys_at_their_defaults_leave_the_config_hash_of_earlier_runs() -> None:
    # Computed on main before data.seed, canary.inclusion_seed, privacy.audit_* and [audit]
    # existed.
    assert config_hash(ExperimentConfig()) == "9ec9f6dfa011bbb1"
    leaky = ExperimentConfig().with_overrides(
        ["data.dataset=digits", "attack.enabled=true", "seed=3"]
    )
    assert config_hash(leaky) == "b9d9c022374b3569"
    audited = leaky.with_overrides(["audit.references=2"])
    assert config_hash(audited) != config_hash(leaky)
    assert training_key(audited) == training_key(leaky)  # references do not change training


# ---------------------------------------------------------------- inclusion


def test_inclusion_minus_one_plants_the_first_half() -> None:
    assert planted_positions(5, -1).tolist() == [0, 1, 2, 3, 4]


def test_inclusion_is_reproducible_and_about_half_per_canary() -> None:
    assert np.array_equal(planted_positions(50, 11), planted_positions(50, 11))
    assert not np.array_equal(planted_positions(50, 11), planted_positions(50, 12))
    planted = np.zeros((400, 100), dtype=bool)
    for k in range(400):
        planted[k, planted_positions(50, k)] = True
    # 400 Bernoulli(1/2) per canary: standard error 0.025; 5 of them is 0.125.
    assert np.abs(planted.mean(axis=0) - 0.5).max() < 0.125
    assert abs(planted.mean() - 0.5) < 0.01  # 40,000 draws: standard error 0.0025


def test_inclusion_plants_its_half_of_the_same_canaries_and_keeps_the_rest_as_twins(
    tmp_path: Path,
) -> None:
    first = federated_data(small_config(tmp_path, "canary.memorization=20"))
    mixed = federated_data(
        small_config(tmp_path, "canary.memorization=20", "canary.inclusion_seed=4")
    )
    pool = np.concatenate([first.memorization_ids, first.memorization_holdout.ids])
    expected = pool[planted_positions(20, 4)]
    assert np.array_equal(mixed.memorization_ids, expected)
    assert np.array_equal(
        np.sort(np.concatenate([mixed.memorization_ids, mixed.memorization_holdout.ids])),
        np.sort(pool),
    )
    held = mixed.client(0).ids
    assert np.isin(expected, held).all()
    assert not np.isin(mixed.memorization_holdout.ids, held).any()
    # Nothing but the canaries moves: the other clients hold what they held.
    for c in range(1, 4):
        assert np.array_equal(first.client(c).ids, mixed.client(c).ids)


# ---------------------------------------------------------------- references


def test_reference_configs_share_the_world_and_differ_in_training(tmp_path: Path) -> None:
    run = small_config(tmp_path, "attack.enabled=true", "audit.references=3", "seed=5")
    refs = [reference_config(run, k) for k in range(3)]
    assert [r.seed for r in refs] == [derive_seed(5, "reference", k) for k in range(3)]
    assert {r.data.seed for r in refs} == {5}
    assert [r.canary.inclusion_seed for r in refs] == [
        derive_seed(5, "inclusion", k) for k in range(3)
    ]
    assert all(r.audit.references == 0 and not r.attack.enabled for r in refs)
    w, w0 = federated_data(run), federated_data(refs[0])
    assert np.array_equal(w.test.ids, w0.test.ids)
    for c in range(1, 4):
        assert np.array_equal(w.client(c).ids, w0.client(c).ids)
    offline = reference_config(run.with_overrides(["audit.online=false"]), 0)
    assert offline.canary.inclusion_seed == -1
    assert _same_world(run, offline)
    with pytest.raises(ValueError, match="reference index"):
        reference_config(run, -1)


def test_references_need_the_observers_leakage_audit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="attack.enabled = true"):
        small_config(tmp_path, "audit.references=2")
    with pytest.raises(ConfigError, match="label-only"):
        small_config(tmp_path, "audit.references=2", "attack.enabled=true", "attack.access=label")


def test_a_reference_tag_reaches_the_clients_as_the_references_config(tmp_path: Path) -> None:
    run = small_config(tmp_path, "attack.enabled=true", "audit.references=2")
    assert split_reference_tag("g3#reference-1") == ("g3", 1, True)
    assert split_reference_tag("g3#reference-12-offline") == ("g3", 12, False)
    assert split_reference_tag("g3") == ("g3", None, True)
    with pytest.raises(ValueError, match="not an integer"):
        split_reference_tag("#reference-x")
    grid = reference_grid(TaggedGrid(None, "g3"), 1, online=True)  # type: ignore[arg-type]
    assert grid.tag == "g3#reference-1" and grid.inner is None
    assert reference_grid(None, 2, online=False).tag == "#reference-2-offline"  # type: ignore[arg-type]

    def tagged(tag: str) -> Message:
        content = RecordDict({EXPERIMENT: ConfigRecord({"id": tag})})
        return Message(content, dst_node_id=1, message_type="query.identify")

    tag, config = experiment_of(tagged("#reference-1"), run, None)  # type: ignore[arg-type]
    assert tag == "#reference-1"
    assert config.to_dict() == reference_config(run, 1).to_dict()
    # A group's clients hold its first config; an offline run of the group says so.
    _, config = experiment_of(tagged("#reference-1-offline"), run, None)  # type: ignore[arg-type]
    offline = run.with_overrides(["audit.online=false"])
    assert config.to_dict() == reference_config(offline, 1).to_dict()
    assert config.canary.inclusion_seed == -1
    tag, config = experiment_of(tagged("g0#reference-0"), {"g0": run}, None)  # type: ignore[arg-type]
    assert tag == "g0#reference-0" and config.seed == reference_config(run, 0).seed


# ---------------------------------------------------------------- runs


def _run(tmp: Path, *overrides: str) -> ExperimentResult:
    from fedunlearn.apps.simulation import simulate

    config = small_config(
        tmp,
        "attack.enabled=true",
        "attack.shadow_models=1",
        "attack.shadow_epochs=1",
        "attack.bootstrap=100",
        "unlearning.methods=['federaser']",
        *overrides,
    )
    return simulate(config, show_progress=False)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    """A small run with 3 online reference federations."""
    return _run(tmp_path_factory.mktemp("audited"), "audit.references=3")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    """The same run without [audit]."""
    return _run(tmp_path_factory.mktemp("plain"))


def _figures(run_dir: Path) -> dict:
    return json.loads((run_dir / "attacks.json").read_text())["metrics"]


def test_a_run_without_audit_is_unchanged_by_it(
    audited: ExperimentResult, plain: ExperimentResult
) -> None:
    assert not (plain.run_dir / "references.npz").exists()
    for label, arrays in plain.models.items():
        assert all(np.array_equal(arrays[k], audited.models[label][k]) for k in arrays)
    figures, with_refs = _figures(plain.run_dir), _figures(audited.run_dir)
    assert set(figures) == {"mia_baseline", "mia_gap", "deletion_records", "deletion_client"}
    for attack, by_model in figures.items():
        assert with_refs[attack] == by_model
    header = (plain.run_dir / "comparison.csv").read_text().splitlines()[0]
    assert "lira" not in header and "forgetting" not in header


def test_the_references_in_masks_are_those_of_their_worlds(audited: ExperimentResult) -> None:
    refs = read_references(audited.run_dir)
    ids = refs["membership/record_id"]
    for k in range(3):
        world = federated_data(reference_config(audited.config, k))
        # Client 0 holds the canaries and is forgotten: its canaries are IN the
        # original, OUT of the retrained model.
        assert np.array_equal(refs["references/in"][k], np.isin(ids, world.client(0).ids))
        assert not refs["references/retrain_in"][k].any()
    member = refs["membership/member"].astype(bool)
    assert 0.2 < refs["references/in"][:, member].mean() < 0.8
    assert 0.2 < refs["references/in"][:, ~member].mean() < 0.8


def test_the_targets_outputs_are_the_released_models(audited: ExperimentResult) -> None:
    refs = read_references(audited.run_dir)
    world = federated_data(audited.config)
    records = {}
    for data in [world.client(c) for c in range(4)] + [world.memorization_holdout]:
        records.update({int(i): (x, y) for x, y, i in zip(data.x, data.y, data.ids, strict=True)})
    ids = refs["membership/record_id"]
    x = np.stack([records[int(i)][0] for i in ids])
    y = np.array([records[int(i)][1] for i in ids])
    access = FullAccess(_context(audited.config).new_model, audited.models["original"])
    expected = logit_confidence(access.logits(x), y)
    np.testing.assert_allclose(refs["target/original/membership_phi"], expected, rtol=1e-6)


def test_lira_and_rmia_figures_follow_from_the_saved_files(audited: ExperimentResult) -> None:
    refs, scores = read_references(audited.run_dir), read_attack_scores(audited.run_dir)
    figures = _figures(audited.run_dir)
    member = refs["membership/member"]
    assert np.array_equal(scores["membership/record_id"], refs["membership/record_id"])
    inside = refs["references/in"].astype(bool)
    # Offline: each model against OUT references of its own kind (the retrained model
    # against the retrained references, with their own in-mask).
    in_of = {
        "original": inside,
        "federaser": inside,
        "retrain": refs["references/retrain_in"].astype(bool),
    }
    # Candidates with an OUT reference of every kind (3 references: some canaries are
    # planted in all three originals and are left out of the offline side).
    offline_cols = np.logical_and.reduce([(~m).sum(axis=0) >= 1 for m in in_of.values()])
    assert 0 < offline_cols.sum() < len(member)
    assert np.array_equal(
        scores["membership_offline/record_id"], refs["membership/record_id"][offline_cols]
    )
    assert str(scores["side/lira_offline"]) == "membership_offline"
    online = (inside.sum(axis=0) >= 1) & ((~inside).sum(axis=0) >= 1)
    assert np.array_equal(
        scores["membership_online/record_id"], refs["membership/record_id"][online]
    )
    for model in ("original", "federaser", "retrain"):
        phi, p = refs[f"target/{model}/membership_phi"], refs[f"target/{model}/membership_p"]
        pop = refs[f"target/{model}/population_p"]
        own = offline_cols
        offline = (
            LiRA(online=False, global_variance=True)
            .fit(refs[f"references/{model}/membership_phi"][:, own], in_of[model][:, own])
            .score(phi[own])
        )
        rmia = (
            RMIA(offline_a=0.3)
            .fit(
                refs[f"references/{model}/membership_p"][:, own],
                refs[f"references/{model}/population_p"],
                in_of[model][:, own],
            )
            .score(p[own], pop)
        )
        lira = (
            LiRA(global_variance=True)
            .fit(refs["references/original/membership_phi"][:, online], inside[:, online])
            .score(phi[online])
        )
        rmia_on = (
            RMIA(offline_a=None)
            .fit(
                refs["references/original/membership_p"][:, online],
                refs["references/original/population_p"],
                inside[:, online],
            )
            .score(p[online], pop)
        )
        for attack, values, truth in (
            ("lira_offline", offline, member[own]),
            ("rmia_offline", rmia, member[own]),
            ("lira_online", lira, member[online]),
            ("rmia_online", rmia_on, member[online]),
        ):
            np.testing.assert_allclose(scores[f"scores/{attack}/{model}"], values)
            assert figures[attack][model]["auc"] == pytest.approx(roc_auc_score(truth, values))


def test_the_documented_recipe_rechecks_the_calibrated_scores(
    audited: ExperimentResult,
) -> None:
    namespace: dict = {"run_dir": audited.run_dir}
    exec(compile(_recipe(), "docs/threats.md", "exec"), namespace)  # asserts equality
    mine = namespace["recheck"](audited.run_dir)
    for attack in ("lira_online", "lira_offline", "rmia_online", "rmia_offline", "ulira"):
        assert mine[attack], attack


def test_ulira_client_test_and_forgetting_follow_from_the_saved_files(
    audited: ExperimentResult,
) -> None:
    refs, figures = read_references(audited.run_dir), _figures(audited.run_dir)
    forgotten_in = refs["references/forgotten_in"].astype(bool)
    unlearned = np.where(forgotten_in, refs["references/federaser/forgotten_phi"], np.nan)
    retrained = refs["references/retrain/forgotten_phi"]
    cols = forgotten_in.any(axis=0)
    ulira = ULiRA(global_variance=True).fit(unlearned[:, cols], retrained[:, cols])
    method = ulira.score(refs["target/federaser/forgotten_phi"][cols])
    retrain = ulira.score(refs["target/retrain/forgotten_phi"][cols])
    truth = np.r_[np.ones(cols.sum()), np.zeros(cols.sum())]
    assert figures["ulira"]["federaser"]["auc"] == pytest.approx(
        roc_auc_score(truth, np.r_[method, retrain])
    )

    phi = np.concatenate([refs["references/original/forgotten_phi"], retrained])
    mask = np.concatenate([forgotten_in, np.zeros_like(forgotten_in)])
    lira = LiRA(online=False, global_variance=True).fit(phi, mask)
    for model in ("original", "federaser", "retrain"):
        _, neglog_p = client_scores(
            lira.score(refs[f"target/{model}/forgotten_phi"]), refs["forgotten/client"], "fisher"
        )
        assert figures["client_lira"][model]["neglog_p"] == pytest.approx(float(neglog_p.mean()))
    assert (
        figures["client_lira"]["original"]["neglog_p"]
        > figures["client_lira"]["retrain"]["neglog_p"]
    )

    every = forgotten_in.all(axis=0)
    report = forgetting_report(
        refs["references/federaser/forgotten_phi"][:, every], retrained[:, every], n_boot=1
    )
    forgetting = figures["forgetting"]["federaser"]
    assert forgetting["outside"] == pytest.approx(report.outside.value)
    assert forgetting["klom"] == pytest.approx(report.klom.value)
    assert forgetting["challenge"] == pytest.approx(report.challenge.value)
    assert forgetting["method_seeds"] == 3 and forgetting["retrained_models"] == 3
    columns = (audited.run_dir / "comparison.csv").read_text().splitlines()[0]
    assert "forgetting_outside" in columns and "ulira_auc" in columns


def test_offline_attacks_take_a_thousand_negatives_beyond_the_canary_pool(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path, "audit.references=2", "attack.negatives=1050")
    refs, figures = read_references(run.run_dir), _figures(run.run_dir)
    # Offline leaves out the candidates planted in both references' originals (no OUT
    # reference of the original's kind): about a quarter of the pool of 100.
    inside = refs["references/in"].astype(bool)
    kept = (~inside).sum(axis=0) >= 1
    negatives = int((refs["membership/member"][kept] == 0).sum())
    assert 1000 <= negatives < 1050
    for attack in ("lira_offline", "rmia_offline"):
        assert figures[attack]["original"]["negatives"] == negatives
        assert figures[attack]["original"]["lowest_fpr"] == pytest.approx(1 / negatives)
    assert figures["lira_offline"]["original"]["tpr_at_01pct"] is not None
    # Twins drawn beyond the pool of 100 are OUT of every reference: no online score.
    pool = refs["references/in"].any(axis=0)
    assert pool.sum() <= 100 and not refs["references/in"][:, ~pool].any()


def _synthetic(references: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """references.npz's arrays for K references, 8 membership candidates (half
    members), 6 forgotten candidates, 5 population records; models original,
    federaser, retrain."""
    n, f, z = 8, 6, 5
    arrays: dict[str, np.ndarray] = {
        "models": np.array(["original", "federaser", "retrain"]),
        "retrain": np.array("retrain"),
        "membership/record_id": np.arange(n),
        "membership/member": np.r_[np.ones(4), np.zeros(4)].astype(np.int8),
        "membership/client": np.r_[np.zeros(4), -np.ones(4)].astype(np.int64),
        "forgotten/record_id": np.arange(100, 100 + f),
        "forgotten/client": np.zeros(f, dtype=np.int64),
        "population/record_id": np.arange(200, 200 + z),
        "references/in": (rng.random((references, n)) < 0.5).astype(np.int8),
        "references/retrain_in": np.zeros((references, n), dtype=np.int8),
        "references/forgotten_in": np.ones((references, f), dtype=np.int8),
    }
    for model in ("original", "federaser", "retrain"):
        for where, shape in (("references", (references,)), ("target", ())):
            arrays[f"{where}/{model}/membership_phi"] = rng.normal(size=(*shape, n))
            arrays[f"{where}/{model}/membership_p"] = rng.random((*shape, n))
            arrays[f"{where}/{model}/forgotten_phi"] = rng.normal(size=(*shape, f))
            arrays[f"{where}/{model}/population_p"] = rng.random((*shape, z))
    return arrays


def test_an_attack_the_references_cannot_fit_is_skipped_with_its_reason() -> None:
    arrays = _synthetic(4, np.random.default_rng(0))
    arrays["references/in"][:] = 1  # every reference trained on every candidate
    scores = score_calibrated(arrays, CalibratedSettings(bootstrap=0))
    assert "IN and OUT references" in scores.skipped["lira_online"]
    assert "lira_online" not in scores.metrics and "side/lira_online" not in scores.arrays
    # Offline: the original and its method have no OUT reference of their own kind
    # (the retrained references do not stand in for them), so offline is skipped too.
    for attack in ("lira_offline", "rmia_offline"):
        assert "OUT reference(s) of every model" in scores.skipped[attack]
        assert attack not in scores.metrics and f"side/{attack}" not in scores.arrays
    assert set(scores.metrics["forgetting"]) == {"federaser"}
    assert "outside_ci_low" not in scores.metrics["forgetting"]["federaser"]


def test_a_method_that_failed_in_a_reference_is_left_out_of_its_seeds() -> None:
    arrays = _synthetic(4, np.random.default_rng(1))
    arrays["references/federaser/forgotten_phi"][2] = np.nan
    scores = score_calibrated(arrays, CalibratedSettings(bootstrap=0))
    assert scores.metrics["forgetting"]["federaser"]["method_seeds"] == 3
    kept = arrays["references/federaser/forgotten_phi"][[0, 1, 3]]
    expected = forgetting_report(kept, arrays["references/retrain/forgotten_phi"], n_boot=1)
    assert scores.metrics["forgetting"]["federaser"]["klom"] == pytest.approx(expected.klom.value)


def test_runs_sharing_training_give_each_its_own_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A group's clients hold its first config (online): the offline run's references
    # must say they are offline in their tags (the clients then plant the run's
    # canaries, test_a_reference_tag_reaches_the_clients_as_the_references_config).
    from fedunlearn.apps.simulation import simulate_groups
    from fedunlearn.run import references

    tags: list[str] = []

    def spy(grid: TaggedGrid, index: int, online: bool) -> TaggedGrid:
        tagged = reference_grid(grid, index, online)
        tags.append(tagged.tag)
        return tagged

    monkeypatch.setattr(references, "reference_grid", spy)
    overrides = (
        "attack.enabled=true",
        "attack.shadow_models=1",
        "attack.shadow_epochs=1",
        "attack.bootstrap=0",
        "unlearning.methods=['federaser']",
        "audit.references=2",
    )
    online = small_config(tmp_path, *overrides)
    offline = small_config(tmp_path, *overrides, "audit.online=false")
    dirs = [tmp_path / "online", tmp_path / "offline"]
    for folder in dirs:
        folder.mkdir()
    (outcome,) = simulate_groups([[online, offline]], [dirs])
    assert not outcome.error
    online_tags = ["g0#reference-0", "g0#reference-1"]
    assert tags == [*online_tags, *(f"{t}-offline" for t in online_tags)]
    grouped = read_references(dirs[1])
    member = grouped["membership/member"] == 1
    assert grouped["references/in"][:, member].all()
    assert not grouped["references/in"][:, ~member].any()


def test_calibrated_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="rmia_a must be in"):
        CalibratedSettings(rmia_a=1.5)
    with pytest.raises(ValueError, match="coverage must be in"):
        CalibratedSettings(coverage=0.0)
    with pytest.raises(ValueError, match="bootstrap must be >= 0"):
        CalibratedSettings(bootstrap=-1)


def test_every_backend_gives_one_config_hash_that_of_the_ray_runs_kept_before() -> None:
    hashes = {
        config_hash(ExperimentConfig().with_overrides([f"simulation.backend={backend}"]))
        for backend in ("ray", "threads", "inline")
    }
    assert hashes == {"9ec9f6dfa011bbb1"}

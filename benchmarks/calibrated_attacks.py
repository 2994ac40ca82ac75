"""The calibrated attacks on real models and the one-run DP audit on randomized response.

    python benchmarks/calibrated_attacks.py [--models 17] [--seeds 10]

1. Trains ``--models`` small scikit-learn MLPs on 8x8 digits (no federation: the
   statistics, not the wiring), each on a random half of 400 candidate records (every
   record IN for exactly half of them; a fifth of the candidates carry a wrong label, so
   memorisation shows). Model 0 is the target, the others its references. Prints AUC,
   TPR at 1% FPR and advantage of the loss threshold, LiRA (online, online with a global
   variance, offline) and RMIA (offline, online).
2. Audits epsilon-DP randomized response on m canaries with the one-run bound
   (``--seeds`` draws per setting) and prints the bound next to the true epsilon.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from fedunlearn.attacks import (
    RMIA,
    LiRA,
    attack_metrics,
    logit_confidence_from_proba,
    one_run_audit,
    randomized_response_scores,
)


def membership(models: int) -> None:
    x, y = load_digits(return_X_y=True)
    x = x / 16
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    candidates, population = order[:400], order[400:800]
    labels = y.copy()
    noisy = candidates[::5]
    labels[noisy] = (y[noisy] + 1) % 10
    inside = np.argsort(rng.random((models, 400)), axis=0) < models // 2
    phi = np.zeros((models, 400))
    proba = np.zeros((models, 400))
    pop_proba = np.zeros((models, 400))
    start = time.perf_counter()
    for k in range(models):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = MLPClassifier((64,), max_iter=300, random_state=k)
            clf.fit(x[candidates[inside[k]]], labels[candidates[inside[k]]])
        p = clf.predict_proba(x[candidates])
        phi[k] = logit_confidence_from_proba(p, labels[candidates])
        proba[k] = p[np.arange(400), labels[candidates]]
        pop_proba[k] = clf.predict_proba(x[population])[np.arange(400), y[population]]
    print(f"{models} models trained in {time.perf_counter() - start:.0f} s\n")
    refs, mask = slice(1, models), inside[1:]
    attacks = {
        "loss threshold": phi[0],
        "LiRA online": LiRA().fit(phi[refs], mask).score(phi[0]),
        "LiRA online, global variance": LiRA(global_variance=True)
        .fit(phi[refs], mask)
        .score(phi[0]),
        "LiRA offline": LiRA(online=False).fit(phi[refs], mask).score(phi[0]),
        "RMIA offline (a = 0.3)": RMIA(0.3)
        .fit(proba[refs], pop_proba[refs], mask)
        .score(proba[0], pop_proba[0]),
        "RMIA online": RMIA(None)
        .fit(proba[refs], pop_proba[refs], mask)
        .score(proba[0], pop_proba[0]),
    }
    print("| attack | AUC | TPR at 1% FPR | advantage |\n|---|---|---|---|")
    for name, scores in attacks.items():
        m = attack_metrics(scores, inside[0])
        print(f"| {name} | {m.auc:.3f} | {m.tpr_at_1pct:.3f} | {m.advantage:.3f} |")


def audit(seeds: int) -> None:
    print("\n| m | true eps | bound: min / mean / max | bound, delta = 1e-5: mean |")
    print("|---|---|---|---|")
    for m in (1000, 10_000):
        for epsilon in (0.5, 1.0, 2.0, 4.0, 8.0):
            plain, with_delta = [], []
            for seed in range(seeds):
                truth = np.random.default_rng(seed).random(m) < 0.5
                scores = randomized_response_scores(truth, epsilon, seed=seed + 10_000)
                plain.append(one_run_audit(scores, truth).epsilon_lower)
                with_delta.append(one_run_audit(scores, truth, delta=1e-5).epsilon_lower)
            print(
                f"| {m:,} | {epsilon:g} | {min(plain):.2f} / {np.mean(plain):.2f} / "
                f"{max(plain):.2f} | {np.mean(with_delta):.2f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=17)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    membership(args.models)
    audit(args.seeds)


if __name__ == "__main__":
    main()

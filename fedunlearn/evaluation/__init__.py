"""The harness's measurements: the audit against the reference, per-round evaluation,
and the leakage audit that scores attacks with the truth only the harness holds.

Owns: the audit of models against the retrained reference (:mod:`.auditor`); the
server-side evaluation after every round and the round log (:mod:`.rounds`); the
leakage audit (:mod:`.leakage`), its candidate records with their truth
(:mod:`.candidates`) and its raw data, ``attack_scores.npz`` (:mod:`.archive`); the
one-run DP audit of a run's models with its canaries (:mod:`.privacy_audit`);
calibrated attacks scored from reference federations' outputs, ``references.npz``
(:mod:`.calibrated`). The
attacker's side lives in :mod:`fedunlearn.attacks` and
never imports this package.

May import: :mod:`fedunlearn.attacks`, :mod:`fedunlearn.config`, :mod:`fedunlearn.data`,
:mod:`fedunlearn.defenses`, :mod:`fedunlearn.federation`, :mod:`fedunlearn.learning`,
:mod:`fedunlearn.seeding`, :mod:`fedunlearn.unlearning`.
"""

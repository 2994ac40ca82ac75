"""Measuring models: metrics, the audit against the reference, per-round evaluation.

Owns: accuracy, attack success, KL and parameter distance (:mod:`.metrics`); the
audit of models against the retrained reference (:mod:`.auditor`); the server-side
evaluation after every round and the round log (:mod:`.rounds`).

May import: :mod:`fedunlearn.learning`, :mod:`fedunlearn.data`.
"""

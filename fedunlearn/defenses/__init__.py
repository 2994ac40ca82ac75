"""Defenses, by stage (DESIGN.md section 5): S1 before unlearning, S2 during, S3 after,
and differential privacy throughout.

Owns: request checks and rate limits (S1, :mod:`.checks`), record commitments (S1,
:mod:`.commitment`), impact monitoring (S2, :mod:`.monitor`), released weights (S3,
:mod:`.release`), DP-SGD clients (:mod:`.privacy`), central DP (:mod:`.central_dp`) and
the privacy a run spent (:mod:`.accounting`).

May import: :mod:`fedunlearn.data`, :mod:`fedunlearn.learning`,
:mod:`fedunlearn.federation`, :mod:`fedunlearn.unlearning` (requests),
:mod:`fedunlearn.seeding`.
"""

"""Talking to clients: the message protocol, stable client ids, sampling, the
history-keeping training strategy, and in-process grids.

Owns: message types and record layouts (:mod:`.protocol`), the client registry and
replies that fail loudly (:mod:`.registry`), seeded sampling and the sampling plan
(:mod:`.sampling`), the :class:`~.trainer.Trainer` protocol and the recording FedAvg
that implements it (:mod:`.trainer`, :mod:`.recording`; its parts: rounds addressed by
stable id :mod:`.addressing`, reading replies :mod:`.replies`, checks on aggregation
:mod:`.aggregation`, a phase's strategy :mod:`.phase_strategy`, what the history says
of training :mod:`.description`), what a phase costs
(:mod:`.cost`), and grids that run clients in this process or tag a sweep's messages
(:mod:`.inline`, :mod:`.tagged_grid`); a run's reference federations, their configs
and message tags (:mod:`.references`).

May import: :mod:`fedunlearn.learning` (arrays), :mod:`fedunlearn.history`,
:mod:`fedunlearn.config` and :mod:`fedunlearn.seeding` (reference configs).
"""

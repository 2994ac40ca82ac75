"""One run from birth to audit, as phase objects over a typed run context.

The phases of DESIGN.md section 1, one module each under :mod:`.phases`:
``prepare`` (the world, the model, client discovery), ``train`` (training with history),
``requests`` (gather and verify, S1), ``unlearn`` (every method and the reference, with
S2 monitoring), ``audit`` (every model against the reference, privacy spent),
``dp_audit`` (the one-run DP audit, with ``privacy.audit_canaries``), ``attack``
(release and attack, S3), ``report`` (the results folder). They share a
:class:`~.context.RunContext`; :mod:`.experiment` runs them for one experiment or a group
sharing training, under one failure policy (:mod:`.failures`). :mod:`.components` loads
every plugin an experiment names and checks it before anything runs. :mod:`.reaudit`
redoes a finished run's leakage audit from its folder (``fedunlearn audit``).
:mod:`.references` trains the reference federations of ``[audit]`` and scores the
calibrated attacks with them (called by the attack phase).

May import: every layer below (config, data, learning, evaluation, federation, history,
unlearning, roles, defenses, attacks, reporting, plugins). Nothing below imports it.
"""

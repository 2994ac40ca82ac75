"""Unlearning methods, one module each (installed as ``fedunlearn.strategies``).

Each method is a subclass of :class:`fedunlearn.UnlearningMethod`, registered by alias
in ``pyproject.toml`` (entry-point group ``fedunlearn.methods``). The strategy that
trains with history, ``RecordingFedAvg``, is in the core
(:mod:`fedunlearn.federation.recording`); methods that run federated rounds build on it.
"""

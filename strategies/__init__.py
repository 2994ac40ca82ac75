"""Flower server strategies: the recording FedAvg that trains with history, and one
module per unlearning method.

Each method is a subclass of :class:`fedunlearn.unlearning.UnlearningMethod`,
registered by alias in ``pyproject.toml`` (entry-point group ``fedunlearn.methods``).
"""

"""The PyTorch side: model weights as arrays, model factories, local training loops,
and metrics on model outputs.

Owns: :data:`~fedunlearn.learning.arrays.Arrays` and update arithmetic
(:mod:`.arrays`), the built-in models and the loading of user factories
(:mod:`.models`), deterministic local training, evaluation and projected gradient
ascent (:mod:`.training`), accuracy, attack success, KL and parameter distance
(:mod:`.metrics`).

May import: :mod:`fedunlearn.data`, :mod:`fedunlearn.plugins`, :mod:`fedunlearn.seeding`.
"""

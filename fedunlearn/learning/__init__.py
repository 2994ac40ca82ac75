"""The PyTorch side: model weights as arrays, model factories, local training loops.

Owns: :data:`~fedunlearn.learning.arrays.Arrays` and update arithmetic, the built-in
models and the loading of user factories, deterministic local training, evaluation
and projected gradient ascent.

May import: :mod:`fedunlearn.data`, :mod:`fedunlearn.plugins`, :mod:`fedunlearn.seeding`.
"""

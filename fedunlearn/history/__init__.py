"""The server's memory of training: the update history, in memory or on disk.

Owns: :class:`~.store.UpdateHistory` (one interface) and its two stores.

May import: :mod:`fedunlearn.learning` (arrays).
"""

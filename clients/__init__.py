"""Flower client roles: honest participants, and (later) attackers.

Each module holds one role, a subclass of :class:`fedunlearn.roles.ClientRole`,
registered by alias in ``pyproject.toml`` (entry-point group ``fedunlearn.roles``).
"""

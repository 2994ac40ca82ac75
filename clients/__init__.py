"""Client roles, one module each (installed as ``fedunlearn.clients``): the honest
participant, the inference attacker and the malicious unlearner.

Each module holds one role, a subclass of :class:`fedunlearn.ClientRole`, registered by
alias in ``pyproject.toml`` (entry-point group ``fedunlearn.roles``).
"""

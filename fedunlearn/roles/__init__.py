"""Client roles: what a client does with each message the server sends it.

Owns: :class:`~.role.ClientRole` (an honest participant whose hooks other roles
override), what a role is given (:class:`~.role.ClientSetup`) and loading a role by
name with its options. Concrete roles live in ``fedunlearn.clients``.

May import: :mod:`fedunlearn.config`, :mod:`fedunlearn.data`, :mod:`fedunlearn.learning`,
:mod:`fedunlearn.federation` (protocol), :mod:`fedunlearn.unlearning` (requests),
:mod:`fedunlearn.defenses` (DP-SGD, commitments).
"""

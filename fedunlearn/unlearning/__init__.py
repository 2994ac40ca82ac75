"""Unlearning: requests, the method interface, and the math methods share.

Owns: what a client asks to forget and the server's forget sets (:mod:`.requests`);
:class:`~.method.UnlearningMethod` with its job and outcome (:mod:`.method`); loading a
method by name with its options (:func:`~.method.make_method`); FedEraser's calibration and L-BFGS
products (:mod:`.calibration`, :mod:`.lbfgs`). Concrete methods live in
``fedunlearn.strategies`` and are found by name, never imported here.

May import: :mod:`fedunlearn.config`, :mod:`fedunlearn.federation`,
:mod:`fedunlearn.history`, :mod:`fedunlearn.learning`, :mod:`fedunlearn.plugins`.
"""

"""The inference attacker: an honest-looking participant that tries to learn what the
unlearning removed.

It trains like any client (so it holds the models it was sent and its own partition)
and, when the harness asks (``query.attack``), runs every attack of
:class:`~fedunlearn.attacks.attacker.Attacker`: shadow models on its own data for the
unlearning-gap attack, threshold membership inference, deletion inference. It receives
candidate records to score but never their truth; the harness scores its answers.
"""

from __future__ import annotations

from fedunlearn.clients.honest import HonestClient
from flwr.app import RecordDict

from fedunlearn.attacks.access import FullAccess
from fedunlearn.attacks.attacker import Attacker
from fedunlearn.attacks.wire import decode_query, encode_scores


class InferenceAttacker(HonestClient):
    """Trains honestly; attacks the models before and after unlearning when asked."""

    name = "inference-attacker"

    def attack(self, content: RecordDict) -> RecordDict:
        models, view, settings = decode_query(content)
        accesses = {label: FullAccess(self.new_model, arrays) for label, arrays in models.items()}
        attacker = Attacker(self.setup.data, self.new_model, settings)
        scores, clients = attacker.score_all(accesses, view)
        return encode_scores(scores, clients)

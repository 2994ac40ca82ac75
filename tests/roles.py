"""Client roles defined outside the package, loaded by dotted path in tests."""

from __future__ import annotations

from fedunlearn.federation.protocol import TrainInstruction, TrainReport
from fedunlearn.learning.arrays import Arrays
from fedunlearn.roles.role import ClientRole
from fedunlearn.unlearning.requests import UnlearningRequest


class Forger(ClientRole):
    """Trains honestly, then asks the server to remove client 1's data."""

    def unlearning_requests(self) -> list[UnlearningRequest]:
        return [UnlearningRequest(target_client=1)]


class CrashesInRoundThree(ClientRole):
    """Trains honestly until round 3, then raises."""

    def fit(self, arrays: Arrays, instruction: TrainInstruction) -> tuple[Arrays, TrainReport]:
        if instruction.server_round == 3:
            raise RuntimeError("crashed on purpose")
        return super().fit(arrays, instruction)

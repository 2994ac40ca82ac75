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


class Padder(ClientRole):
    """Commits, when it joins, to its records and to 30 of client 1's (their ids are
    predictable), then asks to have those 30 removed."""

    def stolen(self) -> list[int]:
        from fedunlearn.data.world import federated_data

        return [int(i) for i in federated_data(self.config).client(1).ids[:30]]

    def commitment(self) -> tuple[list[int], list[bytes]]:
        ids, digests = super().commitment()
        return ids + self.stolen(), digests + [b"\0" * 32] * 30

    def unlearning_requests(self) -> list[UnlearningRequest]:
        return [self.request_records(self.stolen())]


class Impostor(ClientRole):
    """Claims to be client 1 when it joins."""

    @property
    def client_id(self) -> int:
        return 1


class Repeater(ClientRole):
    """Asks three times, identically, to be forgotten."""

    def unlearning_requests(self) -> list[UnlearningRequest]:
        return [UnlearningRequest(target_client=self.setup.client_id)] * 3


class Straggler(ClientRole):
    """Trains honestly except in training round 2, where it never answers."""

    def fit(self, arrays: Arrays, instruction: TrainInstruction) -> tuple[Arrays, TrainReport]:
        if instruction.phase == "train" and instruction.server_round == 2:
            import time

            time.sleep(3600)
        return super().fit(arrays, instruction)


class DropsOutOfCalibration(ClientRole):
    """Trains honestly, then fails every calibration round."""

    def fit(self, arrays: Arrays, instruction: TrainInstruction) -> tuple[Arrays, TrainReport]:
        if instruction.phase == "calibrate":
            raise RuntimeError("dropped out of calibration")
        return super().fit(arrays, instruction)

"""What a phase of a run cost: client computation, communication rounds, time."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Cost:
    """Work done by the federation in one phase (training, unlearning, retraining).

    ``client_epochs`` sums the local epochs every client reported (a half-epoch
    calibration counts 0.5), so methods that train fewer clients, fewer rounds or
    shorter rounds compare fairly.
    """

    client_epochs: float = 0.0
    client_steps: int = 0
    rounds: int = 0
    messages: int = 0
    wall_seconds: float = 0.0

    def add_round(self, epochs: float, steps: int, messages: int) -> None:
        """Count one communication round."""
        self.client_epochs += epochs
        self.client_steps += steps
        self.messages += messages
        self.rounds += 1

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

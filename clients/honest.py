"""The honest client: trains and evaluates as told, and asks to be forgotten when its
config says so (its id is in ``[unlearning] requesters``).

It names only itself; a request for anyone else would be refused by the server's
ownership check.
"""

from __future__ import annotations

from fedunlearn.requests import UnlearningRequest
from fedunlearn.roles import ClientRole


class HonestClient(ClientRole):
    """An honest data contributor that may exercise its right to be forgotten."""

    name = "honest"

    def unlearning_requests(self) -> list[UnlearningRequest]:
        if self.client_id in self.config.unlearning.requesters:
            return [UnlearningRequest(target_client=self.client_id)]
        return []

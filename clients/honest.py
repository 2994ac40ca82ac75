"""The honest client: trains and evaluates as told, and asks to be forgotten when its
config says so (its id is in ``[unlearning] requesters``).

What it asks to forget follows ``[unlearning] scope``: all its data (``"client"``), its
canary records (``"canary"``), or a seeded random ``record_fraction`` of its records
(``"random"``). It names only itself; a request for anyone else would be refused by the
server's ownership check.
"""

from __future__ import annotations

import numpy as np

from fedunlearn.roles.role import ClientRole
from fedunlearn.seeding import derive_seed
from fedunlearn.unlearning.requests import UnlearningRequest


class HonestClient(ClientRole):
    """An honest data contributor that may exercise its right to be forgotten."""

    name = "honest"

    def unlearning_requests(self) -> list[UnlearningRequest]:
        u = self.config.unlearning
        if self.client_id not in u.requesters:
            return []
        if u.scope == "client":
            return [UnlearningRequest(target_client=self.client_id)]
        if u.scope == "canary":
            ids = self.setup.canary_ids
            if len(ids) == 0:
                return []  # nothing planted here: nothing to ask for
        else:
            rng = np.random.default_rng(derive_seed(self.config.seed, "records", self.client_id))
            count = max(1, round(u.record_fraction * len(self.setup.data)))
            ids = rng.choice(self.setup.data.ids, size=count, replace=False)
        return [self.request_records(ids)]

"""Data: datasets as arrays, their split over clients, canaries, and the simulated world.

Owns: loading datasets without the network (:mod:`.datasets`; files, folders and the
hub through Hugging Face ``datasets`` in :mod:`.hub`, their columns as arrays in
:mod:`.tables`), partitioning over clients with flwr-datasets (:mod:`.partition`),
backdoor and memorization canaries (:mod:`.canary`), and the harness's ground truth of
who holds what (:mod:`.world`).

May import: :mod:`fedunlearn.config` (the world is built from it), :mod:`fedunlearn.seeding`.
Only the harness (clients reading their own partition, the audit) uses :mod:`.world`.
"""

"""The phases of a run (DESIGN.md section 1), one module each, in the order they run:

========== ======================================================================
prepare    the world, the initial model, the server's evaluator; discover clients
train      federated training with the history-keeping strategy
requests   gather unlearning requests and verify them (defence stage S1)
unlearn    every method and the reference, stage by stage, monitored (S2)
audit      every model against the reference; the privacy spent
dp_audit   the one-run DP audit of training and of each release (privacy.audit_canaries)
attack     release the models (S3) and run the leakage audit on them
report     the typed results, and the results folder
========== ======================================================================
"""

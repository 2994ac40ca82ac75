"""The Flower apps: the ServerApp that runs an experiment, the ClientApp that routes
messages to roles, and starting them in a simulation (Ray or in-process).

May import: every layer (it is the top, with :mod:`fedunlearn.cli`).
"""

"""A ClientApp mod that makes a client give up on a message after ``federation.timeout``.

The server stops waiting for a reply after ``federation.timeout`` seconds and the round
goes on without that client (or fails, naming it). On Flower's Ray engine that is not
enough: a client still working holds its Ray actor, and the engine waits for every
actor before it shuts down, so one client that never answers kept a finished run alive
for as long as the client slept (measured: the run had failed at +155 s and was still
alive at +425 s). With this mod the client's work runs in a worker thread; when it
takes longer than the timeout the client answers with an error and its actor is free
again. The abandoned thread runs on as a daemon: Python cannot stop a thread, and it
touches nothing the next message reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flwr.app import Context, Message

__all__ = ["ClientTimeoutError", "deadline_mod"]

Handler = Callable[[Message, Context], Message]
Mod = Callable[[Message, Context, Handler], Message]


class ClientTimeoutError(RuntimeError):
    """A client gave up on a message it could not answer within the timeout."""


def deadline_mod(timeout_of: Callable[[Message, Context], float | None]) -> Mod:
    """A mod that answers each message within ``timeout_of(msg, context)`` seconds or
    raises :class:`ClientTimeoutError` (Flower sends the server an error reply); None
    runs the message as it is (where the caller already enforces a deadline)."""

    def mod(msg: Message, context: Context, call_next: Handler) -> Message:
        timeout = timeout_of(msg, context)
        if timeout is None:
            return call_next(msg, context)
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["reply"] = call_next(msg, context)
            except BaseException as err:  # re-raised in the caller's thread
                outcome["error"] = err

        worker = threading.Thread(target=work, name="fedunlearn-client", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise ClientTimeoutError(
                f"gave up on a {msg.metadata.message_type} message after "
                f"federation.timeout = {timeout:g} s (the server no longer waits for it)"
            )
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["reply"]  # type: ignore[return-value]

    return mod

"""Ctrl-C (SIGINT) and SIGTERM (Slurm preemption) as a clean stop: the run saves a checkpoint,
marks itself interrupted and exits 130 / 143 with one line instead of a traceback."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by a signal (BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int, step: int | None = None) -> None:
        self.signum, self.step = signum, step
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """What the handlers saw. While `deferred`, a first signal only asks the distillation loop to
    stop after the outer step it is in (it then saves a checkpoint); a second one, or one outside
    the loop, stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = False

    def __call__(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame) -> None:
        first = self.signum is None
        self.signum = signum
        if self.deferred and first:
            print(f"\n{signal.Signals(signum).name}: stopping after this outer step and saving a "
                  "checkpoint (send it again to stop at once)", file=sys.stderr, flush=True)
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """Within the block a first signal is deferred to the end of the current step."""
        self.deferred = True
        try:
            yield
        finally:
            self.deferred = False
        if self.signum is not None:
            raise Interrupted(self.signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the block (only in the main thread, where Python delivers them)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request.handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

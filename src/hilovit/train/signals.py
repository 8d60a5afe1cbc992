"""SIGINT / SIGTERM as a request to stop: the training loop finishes its step, saves and exits cleanly."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: while inside, SIGINT and SIGTERM set :attr:`received` (the signal's name) instead of
    ending the process; a second one ends it as usual. Outside the main thread (where Python cannot handle
    signals) it does nothing."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is not None:  # asked twice: stop now, the way the process would without us
            self._restore()
            signal.raise_signal(number)
            return
        self.received = signal.Signals(number).name

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._restore()

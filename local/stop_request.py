"""A stop request that signal handlers and threads can make at any moment.

A signal handler runs between two bytecodes of the main thread, possibly inside another handler
run: one that took a lock (``threading.Event.set`` does) deadlocks when a second signal lands while
the first holds it — as when a supervisor signals a process group and ``make`` passes the signal on.
So requesting a stop is one write to a pipe, and waiting is reading it."""

from __future__ import annotations

import os
import select
import signal


class StopRequest:
    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)

    def request(self, *_signal_args: object) -> None:
        """Safe from a signal handler, however often and however nested."""
        try:
            os.write(self._write_fd, b"\0")
        except BlockingIOError:  # the pipe is full of earlier requests: already requested
            pass

    def on_signals(self, *signals: int) -> "StopRequest":
        for sig in signals:
            signal.signal(sig, self.request)
        return self

    def wait(self) -> None:
        select.select([self._read_fd], [], [])

"""Stopping a training run on Ctrl-C or SIGTERM without losing work.

``ppolearn train`` (``learn(stop_on_signal=True)``) wraps its loop in :class:`StopOnSignal`: the first signal
lets the current iteration finish and the learner save a checkpoint before it stops; a second one ends the
process at once, which loses nothing either, because checkpoints are replaced atomically.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Dict, Optional


class StopOnSignal:
    """First SIGINT/SIGTERM: finish the current iteration, checkpoint and stop. Second: end the process at
    once (checkpoints are replaced atomically, so the last good one survives)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            # not an exception: one raised here could land inside any library call, holding its locks
            os.write(2, f"\nppolearn: second {name}: exiting now; the last checkpoint is intact\n".encode())
            os._exit(130)
        self.requested = name
        os.write(
            2, f"\nppolearn: {name}: finishing this iteration, then saving a checkpoint (again: quit now)\n".encode()
        )

    def __enter__(self) -> StopOnSignal:
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

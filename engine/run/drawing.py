"""A grid or a panel being drawn by the engine (issue 16 item 5): its network called through a watch
(diffusion/watch.py) that abandons it when a stop is asked, and says how far it is.

    drawing = Drawing("grid at step 300", calls=50, should_stop=loop.stop_asked, say=loop.event)
    images, nfe = trainer.sample_grid(watch=drawing.watch)    # Interrupted: a stop was asked; nothing written

`should_stop` is asked before every network call, so a stop (the stop command, SIGTERM, `stop --force`) is obeyed
within one sampler step, not at the end of a grid that may take minutes on the CPU. Progress goes to the run's event
log at most every PROGRESS_EVERY_S ("grid at step 2: 12/50 network evaluations, about 3 min left"), the first line
after FIRST_REPORT_S, so a quick grid says nothing more than that it was drawn.

TEST_DELAY_ENV makes every call of a drawing that much slower: a hook only tests set, to draw a slow grid on a tiny
network (a real engine obeying a stop during its grid).
"""

from __future__ import annotations

import os
import time
from typing import Callable

from torch import nn

from difftui.engine.diffusion import Watched
from difftui.engine.eval.cost import describe_seconds

__all__ = ["Drawing", "PROGRESS_EVERY_S", "FIRST_REPORT_S", "TEST_DELAY_ENV"]

PROGRESS_EVERY_S = 30.0                             # a progress event at most this often
FIRST_REPORT_S = 10.0                               # the first one once a drawing has taken this long
TEST_DELAY_ENV = "DIFFTUI_TEST_FORWARD_DELAY_S"     # tests only: seconds slept before each network call


class Drawing:
    def __init__(self, what: str, calls: int | None, should_stop: Callable[[], bool], say: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.calls_total, self.should_stop, self.say, self.clock = what, calls, should_stop, say, clock
        self.start = self.next_report = clock()
        self.next_report += FIRST_REPORT_S
        self.calls = 0
        delay = float(os.environ.get(TEST_DELAY_ENV) or 0)
        self.before_call = (lambda: time.sleep(delay)) if delay > 0 else None

    def watch(self, net: nn.Module) -> nn.Module:
        return Watched(net, should_stop=self.should_stop, on_call=self.on_call, before_call=self.before_call)

    def on_call(self, calls: int) -> None:
        self.calls += 1
        now = self.clock()
        if now >= self.next_report:
            self.next_report = now + PROGRESS_EVERY_S
            self.say(self.progress_line(now))

    def progress_line(self, now: float) -> str:
        """'grid at step 2: 12/50 network evaluations, about 3 min left' (the total when it is known)."""
        if not self.calls_total:
            return f"{self.what}: {self.calls} network evaluations so far"
        line = f"{self.what}: {self.calls}/{self.calls_total} network evaluations"
        if self.calls:
            left = (now - self.start) / self.calls * max(self.calls_total - self.calls, 0)
            line += f", about {describe_seconds(left)} left"
        return line

"""Issue 16 item 5: a grid or panel drawn through a watch (run/drawing.py, diffusion/watch.py): progress lines with
what is left, and a stop obeyed before the next network call. A fake clock: no timing in the test."""

import pytest
import torch

from difftui.engine.diffusion import Interrupted, Watched
from difftui.engine.run.drawing import FIRST_REPORT_S, PROGRESS_EVERY_S, Drawing


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_drawing_says_its_progress_and_what_is_left_at_most_every_period():
    clock, said = FakeClock(), []
    drawing = Drawing("grid at step 2", 50, should_stop=lambda: False, say=said.append, clock=clock)
    net = drawing.watch(torch.nn.Identity())
    for _ in range(11):                             # 11 calls at 1 s each: still before the first report
        clock.now += 1.0
        net(torch.zeros(1))
    assert FIRST_REPORT_S == 10.0 and said == ["grid at step 2: 10/50 network evaluations, about 40 s left"]
    clock.now += 1.0
    net(torch.zeros(1))                             # the next line waits PROGRESS_EVERY_S
    assert len(said) == 1
    clock.now += PROGRESS_EVERY_S
    net(torch.zeros(1))
    # 13 calls in 43 s: 3.3 s a call, 37 calls left.
    assert said[-1] == "grid at step 2: 13/50 network evaluations, about 2 min left"


def test_a_stop_asked_during_a_drawing_interrupts_it_before_the_next_network_call():
    calls, stop = [], [False]
    net = Watched(lambda x: calls.append(1) or x, should_stop=lambda: stop[0])
    net(torch.zeros(1))
    net(torch.zeros(1))
    stop[0] = True
    with pytest.raises(Interrupted, match="stop requested after 2 network evaluations"):
        net(torch.zeros(1))
    assert len(calls) == 2                          # the network was not called again

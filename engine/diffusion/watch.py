"""A network called through a watch: a stop request checked before every evaluation, the count reported after it.

Every sampler and the NLL chain call the network once per step (Heun twice), so a check in front of each call is a
check between two sampler steps: `Interrupted` raised there abandons the chain at once, whatever the sampler, and
leaves nothing half-done (the caller writes nothing of an interrupted grid). Plain arguments: two callables.

    net = Watched(net, should_stop=lambda: flag.is_set(), on_call=lambda n: print(n))
    objective.sample(net, x_T, spec)            # raises Interrupted at the first call after the flag is set
"""

from __future__ import annotations

from typing import Callable

from torch import nn

__all__ = ["Interrupted", "Watched"]


class Interrupted(Exception):
    """A stop was requested while the network was being evaluated; the work in hand is abandoned."""


class Watched(nn.Module):
    """`net` with `should_stop()` asked before each call (True: raise Interrupted) and `on_call(calls so far)` told
    after it. Its submodules are `net`'s, so eval mode and no_grad reach the network as before."""

    def __init__(self, net: nn.Module, should_stop: Callable[[], bool] | None = None,
                 on_call: Callable[[int], None] | None = None, before_call: Callable[[], None] | None = None):
        super().__init__()
        self.net = net
        self.should_stop, self.on_call, self.before_call = should_stop, on_call, before_call
        self.calls = 0

    def forward(self, *args, **kwargs):
        if self.should_stop is not None and self.should_stop():
            raise Interrupted(f"stop requested after {self.calls} network evaluations")
        if self.before_call is not None:
            self.before_call()
        out = self.net(*args, **kwargs)
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return out

"""Sweeps over the playbook's grids (issue 8): grid presets expanded into member runs, a detached supervisor that
starts them as slots free up, and the stop / resume / retry / add / clone actions every front end calls.

    spec.py        RunSpec: the options of one run, and the way back from a resolved config (clone, config diff)
    grid.py        a grid preset and the user's choices -> validated members (plan_sweep)
    slots.py       devices x runs per device -> each member's LaunchPlan
    estimate.py    the wall time, from the throughput earlier runs measured
    control.py     create / start / stop / resume / retry / add; clone
    supervisor.py  `python -m difftui.engine sweep SWEEP_ID --db PATH`
    compare.py     last and best metrics of several runs, and their config difference
"""

from difftui.engine.sweeps.control import (
                                           add_value,
                                           clone_run,
                                           create_sweep,
                                           ensure_supervised,
                                           is_waiting,
                                           launch_sweep,
                                           resume_sweep,
                                           retry_members,
                                           start_supervisor,
                                           stop_sweep,
                                           sweep_grid,
                                           sweep_slots,
)
from difftui.engine.sweeps.errors import SweepError
from difftui.engine.sweeps.estimate import Estimate, estimate_sweep
from difftui.engine.sweeps.plan import Member, SweepPlan, member_label, parse_values_option, plan_sweep
from difftui.engine.sweeps.slots import Slots
from difftui.engine.sweeps.spec import RunSpec, config_diff

__all__ = ["SweepError", "RunSpec", "config_diff", "SweepPlan", "Member", "plan_sweep", "parse_values_option",
           "member_label", "Slots", "Estimate", "estimate_sweep", "create_sweep", "start_supervisor",
           "ensure_supervised", "launch_sweep", "stop_sweep", "resume_sweep", "retry_members", "add_value",
           "clone_run", "is_waiting", "sweep_slots", "sweep_grid"]

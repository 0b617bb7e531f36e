"""Where a new run or a sweep trains: "this machine", or a Slurm profile of slurm.yaml (issue 17).

The profiles are read in a worker when the widget mounts (engine/launch/slurm/profiles.py; a malformed file comes
back as one line, `error`, and only "this machine" is offered). `slurm()` is the chosen profile's options as a dict
(LaunchPlan.slurm), or None for this machine; `profile_name()` names it.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.message import Message
from textual.widgets import Select

__all__ = ["WhereSelect", "LOCAL", "CLUSTER_DEFAULTS"]

LOCAL = "local"
CLUSTER_DEFAULTS = "slurm:"                         # --slurm with no profile: the cluster's own defaults


class WhereSelect(Select):
    """A Select of "this machine" and "Slurm: <profile>" choices."""

    class ProfilesRead(Message):
        def __init__(self, profiles: dict[str, dict[str, Any]], default: str | None, error: str | None) -> None:
            super().__init__()
            self.profiles, self.default, self.error = profiles, default, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__([("this machine", LOCAL)], value=LOCAL, allow_blank=False, id=id, compact=True)
        self.profiles: dict[str, dict[str, Any]] = {}
        self.error: str | None = None

    def on_mount(self) -> None:
        self.read_profiles()

    @work(thread=True, exclusive=True, group="slurm-profiles", exit_on_error=False)
    def read_profiles(self) -> None:
        from difftui.engine.config.model import PresetError
        from difftui.engine.launch.slurm.profiles import default_profile_name, load_profiles
        try:
            profiles = {name: p.to_dict() for name, p in load_profiles().items()}
            default = default_profile_name()
        except PresetError as e:
            self.post_message(self.ProfilesRead({}, None, str(e)))
            return
        self.post_message(self.ProfilesRead(profiles, default, None))

    def on_where_select_profiles_read(self, message: "WhereSelect.ProfilesRead") -> None:
        message.stop()
        self.profiles, self.error = message.profiles, message.error
        current = self.value
        options = [("this machine", LOCAL), ("Slurm: the cluster's defaults", CLUSTER_DEFAULTS)]
        options += [(f"Slurm: {name}" + (" (default)" if name == message.default else ""), f"slurm:{name}")
                    for name in message.profiles]
        self.set_options(options)
        self.value = current if current in {v for _, v in options} else LOCAL

    def profile_name(self) -> str | None:
        """None for this machine; "" for the cluster's defaults; else the profile's name."""
        value = str(self.value)
        return None if value == LOCAL else value.removeprefix("slurm:")

    def slurm(self) -> dict[str, Any] | None:
        """The chosen Slurm options (LaunchPlan.slurm), or None for this machine."""
        name = self.profile_name()
        if name is None:
            return None
        return dict(self.profiles.get(name, {})) if name else {}

"""Who owns a run (or a sweep): an OS file lock held for the owner's whole life (DESIGN.md, process model).

A run is alive exactly while the lock on runs/<id>/lock is held. The lock is `fcntl.flock` on an open file: the kernel
drops it when the owning process exits, however it exits (kill -9 included), so a dead engine never looks alive, and a
slow step, a compile or a laptop suspend never looks dead. The file also holds the owner's pid, host and process start
time, for display only: the lock is the truth, the text is what `ls` and the history print beside it.

`holder(path)` asks without taking the lock for more than an instant (a shared, non-blocking flock that is released
at once); `OwnerLock.acquire` retries for a moment so that such a probe never makes a real owner fail.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from difftui.engine.launch.outcome import LaunchError

__all__ = ["Owned", "Holder", "OwnerLock", "holder", "process_start_time", "pid_alive"]

ACQUIRE_RETRY_S = 2.0                               # how long a new owner retries a lock that a probe holds briefly


class Owned(LaunchError):
    """The lock is held by another live process; the message is one line naming it."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started: float | None                           # the process start time (epoch seconds), when known

    def describe(self) -> str:
        since = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started))}" if self.started else ""
        return f"pid {self.pid} on {self.host}{since}"


#----------------------------------------------------------------------------
# Processes.

def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (epoch seconds, to the clock tick) or None where /proc is missing or it is gone.

    Together with the pid it names one process: a pid reused by a later process has a later start time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    boot = _boot_time()
    if boot is None:
        return None
    return round(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)       # field 22 of stat: starttime


def pid_alive(pid: int | None, started: float | None = None) -> bool:
    """Process `pid` exists, is not a zombie, and (when `started` is given and known here) is the same process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        return True                                 # no /proc (not Linux): kill(0) is all we know
    if started is not None:
        now = process_start_time(pid)
        if now is not None and abs(now - started) > 1.0:
            return False
    return True


#----------------------------------------------------------------------------
# The lock.

def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text() or "{}")
        return Holder(int(data["pid"]), str(data.get("host", "?")), data.get("started"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holder(path: str | os.PathLike[str]) -> Holder | None:
    """The live owner of lock file `path`, or None when nobody holds it (a missing file is not held)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return _read_holder(path) or Holder(0, "?", None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class OwnerLock:
    """An exclusive lock on `path` for as long as this object (or this process) lives.

    `acquire(what)` raises `Owned` with one line ("run 3 is owned by pid 123 on host, since ...") when another
    process holds it. Released by `release()` or by the process ending."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, what: str, *, retry_s: float = ACQUIRE_RETRY_S) -> "OwnerLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + retry_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    owner = _read_holder(self.path)
                    raise Owned(f"{what} is owned by {owner.describe() if owner else 'another process'}") from None
                time.sleep(0.05)
        pid = os.getpid()
        text = json.dumps({"pid": pid, "host": socket.gethostname(), "started": process_start_time(pid)})
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "OwnerLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

"""Where the Inception-v3 weights for FID are, and the one line that says where to put them when they are not.

FID and precision/recall use torch-fidelity's InceptionV3 (the TensorFlow FID network, converted to PyTorch). Its
weights are one file, `weights-inception-2015-12-05-6726825d.pth` (95 MB), published at `INCEPTION_URL`. The lookup
order is: `--inception PATH`, then `$DIFFTUI_INCEPTION`, then the difftui cache (`$DIFFTUI_CACHE`, `$XDG_CACHE_HOME/difftui` or
~/.cache/difftui, sub-folder `inception/`), then torch hub's checkpoint folder (where torch-fidelity's own download
puts it). No path given and none found: one download to the difftui cache when the network allows (sha256 prefix
checked); otherwise `InceptionWeightsMissing` says which file to put where.

No torch import here: the TUI and the CLI ask this module too.
"""

from __future__ import annotations

import os
from pathlib import Path

from difftui.engine.text import one_line
from difftui.engine.user_dirs import cache_root

__all__ = ["INCEPTION_FILE", "INCEPTION_URL", "InceptionWeightsMissing", "cache_dir", "inception_candidates",
           "locate_inception", "missing_message", "download_inception"]

# torch-fidelity 0.4.0's URL_INCEPTION_V3 (feature_extractor_inceptionv3.py); the name carries its sha256 prefix.
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
INCEPTION_SHA256_PREFIX = "6726825d"
DOWNLOAD_TIMEOUT_S = 20.0


class InceptionWeightsMissing(RuntimeError):
    """The Inception weights file is not where it was looked for; the message is one line saying what to do."""


def cache_dir() -> Path:
    """difftui's cache (engine/user_dirs.py): reference statistics and the Inception weights live beneath it."""
    return cache_root()


def _torch_hub_file() -> Path:
    """torch hub's checkpoints folder, computed as torch.hub.get_dir() does, without importing torch."""
    hub = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(hub).expanduser() / "hub" / "checkpoints" / INCEPTION_FILE


def inception_candidates() -> list[Path]:
    """The places looked at when no path is given, in order."""
    return [cache_dir() / "inception" / INCEPTION_FILE, _torch_hub_file()]


def missing_message(path: Path | None = None) -> str:
    where = path if path is not None else cache_dir() / "inception" / INCEPTION_FILE
    return (f"Inception weights for FID not found at {where}: put {INCEPTION_FILE} (from {INCEPTION_URL}) there, "
            f"or pass --inception PATH or set DIFFTUI_INCEPTION=PATH")


def locate_inception(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The weights file to use, or None. An explicit path (argument or $DIFFTUI_INCEPTION) that does not exist raises
    InceptionWeightsMissing naming it (no download: the user said where the file is)."""
    explicit = path or os.environ.get("DIFFTUI_INCEPTION") or None
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise InceptionWeightsMissing(missing_message(p))
        return p
    for p in inception_candidates():
        if p.is_file():
            return p
    return None


def download_inception(url: str = INCEPTION_URL) -> Path:
    """Fetch the weights into the difftui cache (sha256 prefix checked, written atomically by torch hub).
    Raises InceptionWeightsMissing (one line) when the network does not allow it."""
    import socket

    import torch.hub
    dest = cache_dir() / "inception" / INCEPTION_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)        # an offline cluster that drops packets fails in seconds
    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=INCEPTION_SHA256_PREFIX, progress=False)
    except Exception as e:                              # URLError, timeout, hash mismatch
        reason = getattr(e, "reason", None) or e
        raise InceptionWeightsMissing(f"{missing_message()} (download failed: {one_line(reason, named=False)})") \
            from None
    finally:
        socket.setdefaulttimeout(previous)
    return dest

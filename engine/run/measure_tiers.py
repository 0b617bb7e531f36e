"""`python -m difftui.engine measure-tiers`: measure networks' parameters and MACs for the tier cache (issue 11 item 7).

    measure-tiers                 every tier of the catalog (and --presets DIR) at its anchor convention; cached
                                  ones are read, the rest measured into the user's cache; prints the tier table
    measure-tiers --keys -        the NetKeys given as a JSON list on stdin (what tier_cache.figures asks for);
                                  prints one JSON line {key id: {params, macs} | {error}}, caches the successes
    measure-tiers --shipped       regenerate engine/config/tier_figures.json: every shipped tier at its anchor convention
                                  and on each shipped data set of its resolution (fixed and doubled output channels,
                                  with and without the data set's classes)

Runs in its own process: it imports torch, which the TUI never does.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from difftui.engine.config.catalog import Catalog, builtin_dir, load_preset
from difftui.engine.config.tier_figures import (
    Figures,
    NetKey,
    anchor_key,
    format_tier_table,
    lookup,
    net_key,
    shipped_path,
    store,
    tier_row,
    user_cache_path,
)
from difftui.engine.run.builders import measure_net
from difftui.engine.text import one_line

__all__ = ["main", "shipped_keys", "measure"]


def measure(keys: list[NetKey]) -> dict[NetKey, Figures | str]:
    """Figures of each key, or the one-line reason it does not build."""
    out: dict[NetKey, Figures | str] = {}
    for key in keys:
        try:
            params, macs = measure_net(key)
        except Exception as e:                          # a network that does not build: its reason, one line
            out[key] = one_line(e, named=False)
        else:
            out[key] = Figures(params, macs)
    return out


def shipped_keys() -> list[NetKey]:
    root = builtin_dir()
    tiers = [load_preset("backbones", p) for p in sorted((root / "backbones").glob("*.yaml"))]
    datasets = [load_preset("datasets", p) for p in sorted((root / "datasets").glob("*.yaml"))]
    keys = [anchor_key(t) for t in tiers]
    for t in tiers:
        for d in datasets:
            if d.resolution != t.resolution:
                continue
            for out in sorted({d.channels, 2 * d.channels}):                   # fixed / learned or OCM variance
                for classes in sorted({0, d.num_classes}):
                    keys.append(net_key(t, in_channels=d.channels, out_channels=out, resolution=d.resolution,
                                        num_classes=classes))
    return list(dict.fromkeys(keys))


def _store_user(measured: dict[NetKey, Figures]) -> None:
    if not measured:
        return
    try:
        store(user_cache_path(), measured)
    except OSError as e:
        print(f"difftui measure-tiers: cannot write {user_cache_path()} ({e.strerror}); figures not cached",
              file=sys.stderr)


def main(args: Any) -> int:
    if args.shipped:
        keys = shipped_keys()
        found = measure(keys)
        bad = {k: v for k, v in found.items() if isinstance(v, str)}
        if bad:
            for k, v in bad.items():
                print(f"difftui measure-tiers: {k.describe()}: {v}", file=sys.stderr)
            return 1
        path = shipped_path()
        path.unlink(missing_ok=True)
        store(path, found)                                                      # type: ignore[arg-type]
        print(f"wrote {len(found)} networks to {path}")
        return 0
    if args.keys is not None:
        text = sys.stdin.read() if args.keys == "-" else open(args.keys, encoding="utf-8").read()
        keys = [NetKey.from_json(d) for d in json.loads(text)]
        found = measure(keys)
        _store_user({k: v for k, v in found.items() if isinstance(v, Figures)})
        answer = {k.id: ({"error": v} if isinstance(v, str) else {"params": v.params, "macs": v.macs})
                  for k, v in found.items()}
        print(json.dumps(answer))
        return 0
    tiers = [f.preset for f in Catalog(args.presets or []).all("backbones")]
    keys = {t.name: anchor_key(t) for t in tiers}
    cached = {} if args.force else lookup(keys.values())
    todo = [k for k in keys.values() if k not in cached]
    found = measure(todo)
    _store_user({k: v for k, v in found.items() if isinstance(v, Figures)})
    rows, code = [], 0
    for t in tiers:
        fig = cached.get(keys[t.name]) or found.get(keys[t.name])
        if isinstance(fig, str):
            print(f"difftui measure-tiers: {t.name}: {fig}", file=sys.stderr)
            code = 1
            continue
        k = keys[t.name]
        rows.append(tier_row(t, params=fig.params, macs=fig.macs, in_channels=k.in_channels,
                             out_channels=k.out_channels, num_classes=k.num_classes))
    print(format_tier_table(rows))
    print(f"({len(todo)} measured, {len(cached)} from the cache; cache {user_cache_path()})")
    return code

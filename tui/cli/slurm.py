"""The Slurm options of `difftui run` and `difftui sweep start` (issue 17): `--slurm [PROFILE]` and the explicit
options, merged into one validated `SlurmOptions` (engine/launch/slurm/options.py), remembered with `--save-profile`.

    --slurm [PROFILE]        submit to Slurm with this profile of slurm.yaml (alone: the file's default profile,
                             else the cluster's defaults); the options below change the profile's values
    --partition --time --nodes --gpus-per-node --cpus-per-task --mem --account --qos --constraint
    --sbatch KEY=VALUE       any harmless sbatch option (repeatable; `--sbatch hold` for a flag)
    --max-retries N          requeues of a crashed engine (default 3)
    --signal-before SECONDS  the warning before the time limit, to checkpoint and requeue (default 120)
    --save-profile NAME      keep these options as profile NAME of slurm.yaml

`--slurm` takes an optional value: the root command writes a bare `--slurm` as `--slurm=` (`optional_values`).
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from difftui.tui.cli.common import UserError, out

__all__ = ["SLURM_OPTIONS", "slurm_options", "optional_values"]

OPTIONAL_VALUE = ("--slurm",)                       # options whose value may be left out


def optional_values(args: list[str]) -> list[str]:
    """`--slurm` with no value (last, or followed by another option) -> `--slurm=` (the default profile)."""
    out_args = []
    for i, a in enumerate(args):
        if a == "--":
            out_args += args[i:]
            break
        nxt = args[i + 1] if i + 1 < len(args) else None
        if a in OPTIONAL_VALUE and (nxt is None or nxt.startswith("-")):
            out_args.append(a + "=")
        else:
            out_args.append(a)
    return out_args


SLURM_OPTIONS = dict(
    slurm=typer.Option(None, "--slurm", metavar="[PROFILE]",
                       help="submit to Slurm (sbatch) with this profile of ~/.config/difftui/slurm.yaml; alone: the "
                            "default profile"),
    partition=typer.Option(None, "--partition", metavar="NAME", help="Slurm partition (with --slurm)"),
    time=typer.Option(None, "--time", metavar="D-HH:MM:SS", help="Slurm time limit (with --slurm)"),
    nodes=typer.Option(None, "--nodes", metavar="N", help="Slurm nodes (with --slurm)"),
    gpus_per_node=typer.Option(None, "--gpus-per-node", metavar="K",
                               help="GPUs per node, one engine process each (with --slurm)"),
    cpus_per_task=typer.Option(None, "--cpus-per-task", metavar="N", help="CPUs per engine process (with --slurm)"),
    mem=typer.Option(None, "--mem", metavar="SIZE", help="memory per node, e.g. 64G (with --slurm)"),
    account=typer.Option(None, "--account", metavar="NAME", help="Slurm account (with --slurm)"),
    qos=typer.Option(None, "--qos", metavar="NAME", help="Slurm QOS (with --slurm)"),
    constraint=typer.Option(None, "--constraint", metavar="FEATURES", help="node features (with --slurm)"),
    sbatch=typer.Option(None, "--sbatch", metavar="KEY=VALUE",
                        help="another sbatch option, e.g. mail-type=END (repeatable; with --slurm)"),
    max_retries=typer.Option(None, "--max-retries", metavar="N",
                             help="requeue a crashed engine up to N times (default 3; with --slurm)"),
    signal_before=typer.Option(None, "--signal-before", metavar="SECONDS",
                               help="checkpoint and requeue this long before the time limit (default 120)"),
    save_profile=typer.Option(None, "--save-profile", metavar="NAME",
                              help="remember these Slurm options as profile NAME"),
)


def slurm_options(slurm: Optional[str], *, tasks_per_node: Optional[int] = None, **given: Any):
    """The command line's Slurm options as a SlurmOptions (None without --slurm); one line for a bad value, or for
    a Slurm option given without --slurm."""
    from difftui.engine.config.model import PresetError
    from difftui.engine.launch.slurm.options import merge_options, parse_sbatch_pairs
    from difftui.engine.launch.slurm.profiles import get_profile, save_profile
    save = given.pop("save_profile", None)
    fields = {"partition": given.get("partition"), "time": given.get("time"), "nodes": given.get("nodes"),
              "gpus_per_node": given.get("gpus_per_node"), "cpus_per_task": given.get("cpus_per_task"),
              "mem": given.get("mem"), "account": given.get("account"), "qos": given.get("qos"),
              "constraint": given.get("constraint"), "max_retries": given.get("max_retries"),
              "signal_s": given.get("signal_before"), "tasks_per_node": tasks_per_node}
    pairs = given.get("sbatch") or []
    if slurm is None:
        named = [k for k, v in fields.items() if v is not None and k != "tasks_per_node"]
        if named or pairs or save:
            option = "--" + (named[0].replace("_", "-") if named else ("sbatch" if pairs else "save-profile"))
            raise UserError(f"{option.replace('--signal-s', '--signal-before')} is a Slurm option: add --slurm "
                            f"[PROFILE]")
        return None
    try:
        fields["sbatch"] = parse_sbatch_pairs(pairs) if pairs else None
        options = merge_options(get_profile(slurm or None), fields)
    except ValueError as e:                         # PresetError is a ValueError
        raise UserError(str(e)) from None
    if save:
        try:
            path = save_profile(save, options)
        except PresetError as e:
            raise UserError(str(e)) from None
        out.print(f"Slurm profile {save!r} saved in {path}", markup=False)
    return options

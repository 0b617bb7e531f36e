"""What one evaluation measures (playbook 5.5-5.8), given the few objects it needs: the run's config, the objective,
the network with the EMA weights of a checkpoint or snapshot, the run's x_T and the data set's images. No Trainer, no
optimizer, no training stream; no global RNG is seeded (every draw has its own torch.Generator). The process around
it (lock, job row, entry point) is evaluator.py.

    task_panel     every sampler of the run's panel from the fixed x_T: grid, NFE, seconds, NLL of ancestral chains
    task_nll       bits/dim over the whole chain on the held-out split, the number of images beside it
    task_fid       FID (min and spread of the repeats) and precision/recall (k = 3) at the fixed deterministic sampler
    task_curve     FID and NLL at 5/10/15/20 steps for every covariance the model has, with grids from the same x_T
    run_pending_snapshots   FID of each snapshot not yet evaluated at the quick count, then the best one marked
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from difftui.engine.config.model import RunConfig, SamplerSpec
from difftui.engine.core_rules import ANCESTRAL_KINDS
from difftui.engine.eval.rows import format_metric
from difftui.engine.eval.selection import selection_spec
from difftui.engine.numbers import format_number
from difftui.engine.run.builders import build_model, build_objective, sampler_args
from difftui.engine.store import Store

__all__ = ["REPORT_SAMPLES", "QUICK_NLL_IMAGES", "MIN_EVAL_BATCH", "CURVE_VARIANCES", "EvalError", "EvalOptions",
           "Evaluation", "selection_spec"]

REPORT_SAMPLES = 50_000                             # playbook 5.5: FID on 50,000 generated images
QUICK_NLL_IMAGES = 256                              # our choice: a quick NLL, its count always shown beside it
MIN_EVAL_BATCH = 64                                 # sampling needs no gradients: at least this many per batch
CURVE_VARIANCES = (("fixed_small", "heuristic beta_tilde"), ("fixed_large", "heuristic beta"),
                   ("learned", "learned (P1)"), ("ocm", "OCM (P6)"))       # playbook 3.6, 5.7-5.8


class EvalError(RuntimeError):
    """The evaluation cannot run as asked (no checkpoint, a live run, no such snapshot, ...): one line, exit 2."""



@dataclass(frozen=True)
class EvalOptions:
    fid: bool = False
    samples: int | None = None                      # generated images per FID; None: REPORT_SAMPLES or the quick count
    quick: bool = False                             # the recipe's quick FID count and QUICK_NLL_IMAGES
    repeats: int = 1
    inception: str | None = None
    snapshot: int | None = None                     # evaluate this snapshot's EMA weights (else the newest checkpoint)
    pending_snapshots: bool = False
    curve: bool = False
    panel: bool = True
    nll: bool = True
    nll_images: int | None = None                   # None: the whole held-out split (QUICK_NLL_IMAGES when quick)
    batch: int | None = None                        # None: the recipe's batch size, at least MIN_EVAL_BATCH
    device: str | None = None                       # None: the run's own device
    seed: int = 0


#----------------------------------------------------------------------------
# One evaluation.

class Evaluation:
    """The objects one evaluation needs, built once: device, objective, network (EMA weights), x_T, data."""

    def __init__(self, store: Store, run: dict[str, Any], config: RunConfig, opts: EvalOptions, job_id: int,
                 progress: Any, feature_net=None):
        self.store, self.run, self.config, self.opts = store, run, config, opts
        self.run_id = int(run["id"])
        self.run_dir = Path(run["run_dir"])
        self.recipe = config.recipe
        self.job_id = job_id
        self.progress = progress
        self._feature_net = feature_net
        self._train = self._heldout = self._reference = None
        self.lines: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from difftui.engine.run.device import DeviceError, resolve_device, set_cpu_threads
        if self.opts.device:
            self.device = resolve_device(self.opts.device)
        else:
            # The run's own device; a run trained on a GPU that is not here is evaluated where we are.
            try:
                self.device = resolve_device(self.run.get("device") or "auto")
            except DeviceError:
                self.device = resolve_device("auto")
        if self.device.type == "cpu":
            set_cpu_threads()
        profile = self.config.dataset
        self.objective = build_objective(self.recipe, clip=not profile.latents)
        # A latent data set's samples are images only after its VAE decodes them (grids, FID); None for pixels.
        from difftui.engine.data.latents import latent_decoder
        self.decoder = latent_decoder(profile, self.device)
        self.decode = self.decoder.decode if self.decoder is not None else None
        x_T_path = self.run_dir / "x_T.pt"
        if not x_T_path.exists():
            from difftui.engine.run.checkpoint import latest_checkpoint
            if latest_checkpoint(self.run_dir / "checkpoints") is None:
                raise EvalError(f"run {self.run_id} has no checkpoint yet to evaluate")
            raise EvalError(f"{x_T_path} is missing: the run's fixed noise is gone, so its grids cannot be redrawn")
        self.x_T = torch.load(x_T_path, map_location="cpu", weights_only=True).to(self.device)
        self.shape = tuple(self.x_T.shape[1:])
        self.num_classes = self.config.dataset.num_classes if self.recipe.class_conditional else 0
        self.grid_labels = (torch.arange(self.x_T.shape[0], device=self.device) % self.num_classes
                            if self.num_classes else None)
        self.batch = self.opts.batch or max(self.recipe.batch_size, MIN_EVAL_BATCH)

    def build_net(self, ema_state: dict[str, torch.Tensor], source: str = "weights") -> torch.nn.Module:
        """The backbone as the trainer builds it, with the EMA weights, in eval mode, no gradients."""
        channels = self.shape[0]
        net = build_model(self.config.backbone, in_channels=channels,
                          out_channels=self.objective.out_channels(channels),
                          resolution=self.shape[-1], num_classes=self.num_classes, dropout=self.recipe.dropout)
        missing, unexpected = _key_mismatch(net.state_dict(), ema_state)
        if missing or unexpected:
            raise EvalError(f"{source}: its weights do not fit run {self.run_id}'s backbone "
                            f"'{self.config.backbone.name}' ({len(missing)} missing, {len(unexpected)} unexpected "
                            f"tensors, e.g. {(missing or unexpected)[0]})")
        net.load_state_dict(ema_state)
        return net.to(self.device).eval().requires_grad_(False)

    def load_weights(self, snapshot: int | None) -> tuple[torch.nn.Module, int, str]:
        """(net with EMA weights, training step, where they came from) of a snapshot or the newest checkpoint."""
        from difftui.engine.run import snapshots
        if snapshot is not None:
            path = snapshots.snapshot_path(self.run_dir, snapshot)
            if not path.exists():
                have = [s for s, _ in snapshots.list_snapshots(self.run_dir)]
                raise EvalError(f"run {self.run_id} has no snapshot at step {snapshot} (snapshots: "
                                f"{', '.join(map(str, have)) or 'none yet'})")
            try:
                state = snapshots.load_snapshot(path)
            except ValueError as e:
                raise EvalError(str(e)) from None
            return self.build_net(state["ema"], str(path)), int(state["step"]), f"snapshot {path.name}"
        from difftui.engine.run.checkpoint import latest_checkpoint, load_checkpoint
        path = latest_checkpoint(self.run_dir / "checkpoints")
        if path is None:
            raise EvalError(f"run {self.run_id} has no checkpoint yet to evaluate")
        state = load_checkpoint(path, map_location="cpu")
        return self.build_net(state["ema"]["net"], str(path)), int(state["step"]), f"checkpoint {path.name}"

    # -- data -----------------------------------------------------------------------------------------------------

    @property
    def train_images(self) -> torch.Tensor:
        """The whole training split as stored (the FID reference; playbook 5.5: no x-flips on the real side)."""
        if self._train is None:
            from difftui.engine.data import build_pixels
            # Pixels, also for a latent data set: FID compares images (playbook 5.5).
            self._train = build_pixels(dataclasses.replace(self.config.dataset, split="train"))
        return self._train.images

    def heldout(self) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """(images in [-1, 1], labels or None, facts) of the held-out split, a fixed subset when asked."""
        if self._heldout is None:
            from difftui.engine.eval.metrics.heldout import heldout_set, heldout_subset, overlap
            data = heldout_set(self.config.dataset)
            n = self.opts.nll_images or (QUICK_NLL_IMAGES if self.opts.quick else None)
            images, labels = heldout_subset(data, n, seed=self.opts.seed)
            shared = overlap(self.train_images, data.images)
            facts = {"split": "test", "images": len(images), "split_size": len(data), "overlap_with_train": shared}
            if shared:
                note = (f"warning: {shared} of {len(data)} held-out images of '{self.config.dataset.name}' are also "
                        f"training images; its NLL is not a held-out number")
                self.store.add_event(self.run_id, "warning", note)
                self.lines.append(note)
            self._heldout = (images, labels if self.num_classes else None, facts)
        return self._heldout

    def feature_net(self):
        channels = self.config.dataset.channels if self.decoder is not None else self.shape[0]
        if channels not in (1, 3):
            raise EvalError(f"FID needs decoded grey or RGB images; run {self.run_id} generates {self.shape[0]}-channel "
                            f"data ({self.config.dataset.name})")
        if self._feature_net is None:
            from difftui.engine.eval.metrics.inception import load_inception
            self.progress.say("loading the Inception-v3 feature network")
            self._feature_net = load_inception(self.opts.inception, self.device)
        return self._feature_net

    def reference(self):
        """The training split's feature statistics (cached under a key of its contents and the protocol)."""
        if self._reference is None:
            from difftui.engine.eval.metrics.reference import reference_statistics
            net = self.feature_net()
            images = self.train_images
            units = math.ceil(len(images) / self.batch)
            self.progress.plan(units)
            done = [0]

            def on_batch(d, total):
                step_units = math.ceil(d / self.batch) - done[0]
                done[0] += step_units
                self.progress.advance(step_units, f"reference statistics: {format_number(d)}/{format_number(total)} "
                                                  f"real images")

            self.progress.say(f"reference statistics of {format_number(len(images))} training images")
            self._reference = reference_statistics(images, net, batch=self.batch, on_batch=on_batch)
            self.progress.advance(units - done[0])
            self.progress.say("reference statistics " + ("read from the cache" if self._reference.cached
                                                          else f"computed and cached ({self._reference.path})"))
        return self._reference

    # -- the measurements -----------------------------------------------------------------------------------------

    def common(self, step: int, spec: SamplerSpec | str, nfe: int | None, kind: str, snapshot: int | None,
               protocol: dict[str, Any]) -> dict[str, Any]:
        label = spec.describe() if isinstance(spec, SamplerSpec) else spec
        return dict(step=step, sampler=label, nfe=nfe, kind=kind, job_id=self.job_id, snapshot=snapshot,
                    protocol=protocol)

    def fid_samples(self) -> tuple[int, bool]:
        """(generated images per FID, quick): any count below the report's 50,000 is a quick, monitoring number
        (playbook 5.5: a 10K FID is biased; say so beside it and check key results at 50K)."""
        n = self.opts.samples or (self.recipe.eval_quick_samples if self.opts.quick else REPORT_SAMPLES)
        return n, n < REPORT_SAMPLES

    def measure_fid(self, net, spec: SamplerSpec, samples: int, repeats: int, label: str) -> dict[str, Any]:
        """FID (min and spread over `repeats`), precision and recall (means), timing and protocol facts."""
        from difftui.engine.eval.metrics.fid import (
            PR_NEIGHBOURHOOD,
            feature_statistics,
            frechet_distance,
            precision_recall,
            summarise,
        )
        from difftui.engine.eval.metrics.generate import generated_features
        ref = self.reference()
        feature_net = self.feature_net()
        args = sampler_args(spec)
        self.objective.check_spec(args)
        fids, precisions, recalls, timings = [], [], [], []
        for r in range(repeats):
            # Repeat r draws its own images: seed (opts.seed, r); the same seed reproduces the same images.
            def on_batch(d, total, r=r):
                self.progress.advance(1, f"{label}: repeat {r + 1}/{repeats}, {format_number(d)}/"
                                         f"{format_number(total)} images")
            feats, timing = generated_features(self.objective, net, args, samples, shape=self.shape, decode=self.decode,
                                               feature_net=feature_net, device=self.device, batch=self.batch,
                                               seed=self.opts.seed * 1_000 + r + 1, num_classes=self.num_classes,
                                               on_batch=on_batch)
            fids.append(frechet_distance(feature_statistics(feats), ref.stats))
            p, rc = precision_recall(feats, ref.pr_subset(len(feats)))
            precisions.append(p)
            recalls.append(rc)
            timings.append(timing)
        fid, spread = summarise(fids)
        wall = sum(t.wall_s for t in timings)
        return {
            "fid": fid, "spread": spread, "fids": fids, "nfe": timings[0].nfe,
            "precision": float(sum(precisions) / repeats), "recall": float(sum(recalls) / repeats),
            "seconds": wall, "images_per_s": samples * repeats / wall if wall > 0 else math.nan,
            "sampler_s": sum(t.sampler_s for t in timings), "feature_s": sum(t.feature_s for t in timings),
            "protocol": {
                "sampler": spec.describe(), "nfe": timings[0].nfe, "samples": samples, "repeats": repeats,
                "fids": fids, "feature_net": _name(feature_net), "reference": {
                    "split": "train", "images": ref.count, "x_flip": False, "key": ref.key},
                "pr_k": PR_NEIGHBOURHOOD, "pr_real": min(samples, len(ref.pr_features)),
                "pr_summary": "mean over repeats",
                "seed": self.opts.seed, "device": str(self.device), "batch": self.batch,
            },
        }

    def fid_lines(self, m: dict[str, Any], quick: bool) -> str:
        p = m["protocol"]
        head = f"FID {format_metric('fid', m['fid'])}"
        if p["repeats"] > 1:
            head += f" (min of {p['repeats']}, spread {format_metric('spread', m['spread'])})"
        return (f"{head}  precision {format_metric('precision', m['precision'])}  recall "
                f"{format_metric('recall', m['recall'])}  |  {format_number(p['samples'])} samples"
                f"{' (quick)' if quick else ''}, {p['sampler']}, NFE {p['nfe']}, vs "
                f"{format_number(p['reference']['images'])} training images, {p['feature_net']}; "
                f"{format_number(m['images_per_s'])} img/s")

    def task_panel(self, net, step: int, snapshot: int | None, source: str) -> None:
        from difftui.engine.eval.panel import evaluate_panel, panel_samplers, record_panel
        specs = panel_samplers(self.config.sampler)
        self.progress.say(f"panel: {len(specs)} samplers from the fixed x_T")
        images = labels = None
        n_images = 0
        facts: dict[str, Any] = {}
        if self.opts.nll and any(s.kind in ANCESTRAL_KINDS for _, s in specs) and \
                self.objective.kind == "ddpm" and self.decoder is None:
            images, labels, facts = self.heldout()
            images = images.to(self.device)
            labels = labels.to(self.device) if labels is not None else None
            n_images = len(images)
        rows = evaluate_panel(self.objective, net, self.x_T, self.config.sampler, images=images, seed=self.opts.seed,
                              y=self.grid_labels, image_labels=labels, nll_batch=self.batch)
        protocol = {"source": source, "x_T": "runs/<id>/x_T.pt", "heldout": facts, "device": str(self.device)}
        self.lines += record_panel(self.store, self.run_id, step, rows, self.run_dir, n_images, decode=self.decode,
                                   job_id=self.job_id,
                                   snapshot=snapshot, protocol=protocol)
        self.progress.advance(1, "panel done")

    def task_nll(self, net, step: int, snapshot: int | None, source: str) -> None:
        from difftui.engine.eval.metrics.heldout import heldout_nll
        if self.objective.kind != "ddpm" or self.decoder is not None:
            why = (f"the {self.objective.kind} objective has no chain likelihood" if self.decoder is None else
                   "a latent data set's chain likelihood is of VAE latents, not of images")
            self.lines.append(f"NLL unavailable: {why}")
            self.progress.advance(1)
            return
        images, labels, facts = self.heldout()
        variance = "fixed_small" if self.objective.variance == "fixed_large" else self.objective.variance
        T = self.objective.diffusion.num_timesteps
        label = f"full chain T={T} {variance}"
        self.progress.say(f"held-out NLL on {format_number(len(images))} images ({label})")
        start = time.perf_counter()
        bpd = heldout_nll(self.objective, net, images, labels, device=self.device, batch=self.batch,
                          seed=self.opts.seed,
                          on_batch=lambda d, n: self.progress.advance(
                              1, f"held-out NLL: {format_number(d)}/{format_number(n)}"))
        seconds = time.perf_counter() - start
        protocol = {"source": source, "heldout": facts, "chain": label, "device": str(self.device)}
        common = self.common(step, label, T, "nll", snapshot, protocol)
        self.store.add_eval_results(self.run_id, [
            {**common, "metric": "nll_bpd", "value": bpd, "samples": len(images)},
            {**common, "metric": "seconds", "value": seconds}])
        self.lines.append(f"NLL {format_metric('nll_bpd', bpd)} bits/dim on {format_number(len(images))} held-out "
                          f"images (test split of {format_number(facts['split_size'])}), {label}; "
                          f"{format_metric('seconds', seconds)} s")

    def task_fid(self, net, step: int, snapshot: int | None, source: str) -> float:
        spec = selection_spec(self.config)
        samples, quick = self.fid_samples()
        m = self.measure_fid(net, spec, samples, self.opts.repeats, "FID")
        m["protocol"].update(source=source, quick=quick, selection="lowest FID at a fixed deterministic sampler "
                             "and NFE (playbook 5.6)")
        common = self.common(step, spec, m["nfe"], "fid", snapshot, m["protocol"])
        common.update(samples=samples, repeats=self.opts.repeats)
        self.store.add_eval_results(self.run_id, [
            {**common, "metric": "fid", "value": m["fid"], "spread": m["spread"]},
            {**common, "metric": "precision", "value": m["precision"]},
            {**common, "metric": "recall", "value": m["recall"]},
            {**common, "metric": "seconds", "value": m["seconds"]}])
        self.lines.append(self.fid_lines(m, quick))
        return m["fid"]

    def task_curve(self, net, step: int, snapshot: int | None, source: str) -> None:
        from difftui.engine.atomic import atomic_write_bytes
        from difftui.engine.diffusion import FEW_STEP_COUNTS
        from difftui.engine.eval.metrics.heldout import heldout_nll
        from difftui.engine.run.sample_grid import grid_png
        if self.objective.kind != "ddpm":
            raise EvalError(f"the few-step curve is for the DDPM-family chains; this run trains the "
                            f"{self.objective.kind} objective")
        samples, quick = self.fid_samples()
        images, labels, facts = self.heldout()
        for steps in FEW_STEP_COUNTS:                                          # playbook 5.8: 5/10/15/20 steps
            for variance, name in CURVE_VARIANCES:
                spec = SamplerSpec(kind="covariance", steps=steps, variance=variance, label=f"{name} N={steps}")
                args = sampler_args(spec)
                try:
                    self.objective.check_spec(args)
                except ValueError:
                    continue                                                   # a covariance this model lacks
                self.progress.say(f"curve: {spec.describe()}")
                # The grid: the run's fixed x_T, the same for every cell (playbook 5.8 / 5.2).
                gen = torch.Generator(device=self.device).manual_seed(self.opts.seed)
                grid, nfe = self.objective.sample(net, self.x_T, args, generator=gen, y=self.grid_labels)
                png = grid_png(self.decode(grid) if self.decode is not None else grid)
                path = atomic_write_bytes(self.run_dir / "curve" / f"step-{step:07d}-{variance}-{steps:02d}.png", png)
                self.store.add_sample(self.run_id, step=step, kind="curve", sampler=spec.describe(), nfe=int(nfe),
                                      png=png, path=str(path))
                m = self.measure_fid(net, spec, samples, self.opts.repeats, f"curve {spec.describe()}")
                bpd = heldout_nll(self.objective, net, images, labels, device=self.device, batch=self.batch,
                                  spec=args, seed=self.opts.seed,
                                  on_batch=lambda d, n: self.progress.advance(1))
                m["protocol"].update(source=source, quick=quick, steps=steps, variance=variance, heldout=facts,
                                     grid=str(path))
                common = self.common(step, spec, int(nfe), "curve", snapshot, m["protocol"])
                common.update(repeats=self.opts.repeats)
                self.store.add_eval_results(self.run_id, [
                    {**common, "metric": "fid", "value": m["fid"], "spread": m["spread"], "samples": samples},
                    {**common, "metric": "precision", "value": m["precision"], "samples": samples},
                    {**common, "metric": "recall", "value": m["recall"], "samples": samples},
                    {**common, "metric": "nll_bpd", "value": bpd, "samples": len(images)}])
                self.lines.append(f"curve {spec.describe()}: FID {format_metric('fid', m['fid'])}, NLL "
                                  f"{format_metric('nll_bpd', bpd)} bits/dim "
                                  f"({format_number(samples)} samples{' quick' if quick else ''}, "
                                  f"{format_number(len(images))} held-out images)")

    def curve_units(self) -> int:
        from difftui.engine.diffusion import FEW_STEP_COUNTS
        samples, _ = self.fid_samples()
        cells = 0
        for variance, _ in CURVE_VARIANCES:
            try:
                self.objective.check_spec(sampler_args(SamplerSpec(kind="covariance", steps=5, variance=variance)))
                cells += 1
            except ValueError:
                pass
        n_heldout = len(self.heldout()[0])
        per_cell = self.opts.repeats * math.ceil(samples / self.batch) + math.ceil(n_heldout / self.batch)
        return cells * len(FEW_STEP_COUNTS) * per_cell

    # -- the whole evaluation -------------------------------------------------------------------------------------

    def run_weights(self) -> list[str]:
        """The checkpoint or `opts.snapshot`: panel, held-out NLL, FID, curve as the options ask."""
        net, step, source = self.load_weights(self.opts.snapshot)
        snapshot = self.opts.snapshot
        o = self.opts
        self.lines.append(f"run {self.run_id} at step {step}: EMA weights of {source}, on {self.device}")
        units = int(o.panel) + (math.ceil(len(self.heldout()[0]) / self.batch) if o.nll and
                                self.objective.kind == "ddpm" else int(o.nll))
        if o.fid:
            units += o.repeats * math.ceil(self.fid_samples()[0] / self.batch)
        if o.curve:
            units += self.curve_units()
        self.progress.plan(units)
        if o.fid or o.curve:
            self.feature_net()                          # missing weights: one line now, before any other work
        if o.panel:
            self.task_panel(net, step, snapshot, source)
        if o.nll:
            self.task_nll(net, step, snapshot, source)
        if o.fid:
            self.task_fid(net, step, snapshot, source)
            if snapshot is not None:
                self.store.update_best_snapshot(self.run_id)
        if o.curve:
            self.task_curve(net, step, snapshot, source)
        return self.lines

    def pending(self, tried: set[int]) -> list[int]:
        from difftui.engine.run.snapshots import list_snapshots
        done = {r["snapshot"] for r in self.store.eval_results(self.run_id, kind="fid") if r["metric"] == "fid"}
        return [s for s, _ in list_snapshots(self.run_dir) if s not in done and s not in tried]

    def run_pending_snapshots(self, tried: set[int]) -> list[str]:
        """FID at the quick count of each snapshot without one (newly written ones too), then the best marked."""
        samples, quick = self.fid_samples()
        while todo := self.pending(tried):
            self.feature_net()
            self.progress.plan(len(todo) * math.ceil(samples / self.batch))
            for step in todo:
                tried.add(step)
                net, _, source = self.load_weights(step)
                fid = self.task_fid(net, step, step, source)
                best = self.store.update_best_snapshot(self.run_id)
                self.store.add_event(self.run_id, "info", f"snapshot {step}: FID {format_metric('fid', fid)} at "
                                     f"{format_number(samples)} samples{' (quick)' if quick else ''}; best snapshot: "
                                     f"{best}")
                del net
        return self.lines


def _key_mismatch(expected: dict, got: dict) -> tuple[list[str], list[str]]:
    return [k for k in expected if k not in got], [k for k in got if k not in expected]


def _name(net) -> str:
    from difftui.engine.eval.metrics.features import feature_net_name
    return feature_net_name(net)

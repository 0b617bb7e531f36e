"""Timestep samplers for the DDPM family: uniform, and P1's importance sampling of L_vlb (P1 Sec. 3.3, eq. 18;
improved-diffusion's LossSecondMomentResampler).

A sampler returns (t [B] long, weights [B]); weights = 1 / (T p_t) make the weighted loss an unbiased estimate of the
uniform-t expectation, so L_vlb = sum_t L_t = E_{t~p}[L_t / p_t] = T * E[w L_t].

Both draw t on the training device and the importance sampler keeps its loss history there, so a CUDA step never waits
on the host for them (improved-diffusion draws with NumPy and copies; that is a host sync per step).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["UniformSampler", "LossSecondMomentResampler", "gather_losses"]


class UniformSampler:
    """t ~ Uniform{0, ..., T-1} (playbook 0.2), weight 1."""

    def __init__(self, num_timesteps: int):
        self.num_timesteps = num_timesteps

    def weights(self) -> np.ndarray:
        return np.ones([self.num_timesteps], dtype=np.float64)

    def sample(self, batch_size: int, device, generator: torch.Generator | None = None):
        """`generator` (optional) must live on `device`; None draws from that device's default generator."""
        t = torch.randint(0, self.num_timesteps, (batch_size,), generator=generator, device=device)
        return t, torch.ones(batch_size, dtype=torch.float64, device=device)

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        pass

    def state_dict(self) -> dict:
        return {"kind": "uniform"}

    def load_state_dict(self, state: dict) -> None:
        pass


class LossSecondMomentResampler(UniformSampler):
    """P1 eq. 18: p_t proportional to sqrt(E[L_t^2]), from the last `history_per_term` = 10 values of each L_t.

    Until every t has 10 values the sampler is uniform (P1's warm-up); afterwards the distribution is mixed with
    `uniform_prob` = 0.001 of the uniform one, as improved-diffusion does, so that no p_t vanishes.

    The history is a ring of 10 values per t on the training device (`_ring`, with the number of values ever written
    per t in `_writes`): a batch's losses are written with scatter operations, so an update never reads a value on the
    host. The checkpointed state is improved-diffusion's layout (oldest value first, and the count per t).
    """

    def __init__(self, num_timesteps: int, history_per_term: int = 10, uniform_prob: float = 0.001):
        super().__init__(num_timesteps)
        self.history_per_term = history_per_term                    # playbook 3.3 / P1 Sec. 3.3: "previous 10 values"
        self.uniform_prob = uniform_prob                            # improved-diffusion: 0.001 uniform mixture
        # One spare element after the T x H values: the write target of the losses a batch drops (see update).
        self._flat = torch.zeros(num_timesteps * history_per_term + 1, dtype=torch.float64)
        self._writes = torch.zeros(num_timesteps, dtype=torch.int64)

    @property
    def _ring(self) -> torch.Tensor:
        return self._flat[:-1].view(self.num_timesteps, self.history_per_term)

    def _place(self, device) -> None:
        """The state on `device` (a copy once, when the device changes: the first step, a resume)."""
        self._flat, self._writes = self._flat.to(device), self._writes.to(device)      # no copy when already there

    def warmed_up(self) -> bool:
        return bool((self._writes >= self.history_per_term).all())

    def _weights(self) -> torch.Tensor:
        """[T] float64 on the state's device: ones until warmed up, then P1 eq. 18 with the uniform mixture."""
        # P1 eq. 18: p_t ~ sqrt(E[L_t^2]), sum_t p_t = 1.
        w = self._ring.square().mean(dim=-1).sqrt()
        w = w / w.sum() * (1 - self.uniform_prob) + self.uniform_prob / self.num_timesteps
        return torch.where((self._writes >= self.history_per_term).all(), w, torch.ones_like(w))

    def weights(self) -> np.ndarray:
        return self._weights().cpu().numpy()

    def sample(self, batch_size: int, device, generator: torch.Generator | None = None):
        """`generator` (optional) must live on `device`; None draws from that device's default generator."""
        self._place(device)
        w = self._weights()
        p = w / w.sum()
        t = torch.multinomial(p, batch_size, replacement=True, generator=generator)
        weights = 1.0 / (len(p) * p[t])
        return t, weights

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-sample losses (all ranks must call this with the gathered values; see gather_losses).

        As improved-diffusion's loop over the batch in order: each t keeps its newest 10 values. Within a batch, the
        k-th of n draws of the same t is written to ring slot (writes[t] + k) mod 10, and only the newest 10 of the n
        are written (the others would be overwritten in the same update)."""
        self._place(t.device)
        T, H = self.num_timesteps, self.history_per_term
        t = t.detach().long()
        losses = losses.detach().to(torch.float64)
        # k: the rank of each draw among the draws of its t, in batch order; n: how often its t was drawn.
        order = torch.argsort(t, stable=True)
        ts = t[order]
        first = torch.searchsorted(ts, ts, side="left")
        count = torch.searchsorted(ts, ts, side="right") - first
        k, n = torch.empty_like(t), torch.empty_like(t)
        k[order] = torch.arange(len(t), device=t.device) - first
        n[order] = count
        slot = t * H + (self._writes[t] + k) % H
        target = torch.where(k >= n - H, slot, T * H)                 # dropped values go to the spare element
        self._flat.index_put_((target,), losses)
        self._writes.index_add_(0, t, torch.ones_like(t))

    def state_dict(self) -> dict:
        H = self.history_per_term
        full = self._writes >= H
        # Oldest first: a full ring's oldest value is where the next one will be written.
        start = torch.where(full, self._writes % H, 0)
        index = (torch.arange(H, device=start.device)[None, :] + start[:, None]) % H
        return {"kind": "loss-second-moment",
                "history_per_term": H,
                "uniform_prob": self.uniform_prob,
                "loss_history": self._ring.gather(1, index).cpu(),
                "loss_counts": self._writes.clamp(max=H).cpu()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "loss-second-moment":
            raise ValueError(f"importance-sampler state of kind {state.get('kind')!r} cannot be loaded into "
                             "a loss-second-moment resampler")
        history = torch.as_tensor(state["loss_history"]).to(torch.float64)
        if tuple(history.shape) != tuple(self._ring.shape):
            raise ValueError(f"importance-sampler state has shape {tuple(history.shape)}, expected "
                             f"{tuple(self._ring.shape)}")
        device = self._flat.device
        # Oldest first with `counts` values per t: the ring starts at slot 0 and the next write goes to counts mod H.
        self._flat = torch.cat([history.reshape(-1), torch.zeros(1, dtype=torch.float64)]).to(device)
        self._writes = torch.as_tensor(state["loss_counts"]).long().to(device)


def gather_losses(t: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' (t, losses), so that every rank keeps the same sampler state; identity without torch.distributed.

    Every rank passes the same number of values (its share of the global batch, which the batch split makes equal),
    so no sizes are exchanged and nothing is read on the host."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t, losses
    size = dist.get_world_size()
    all_t = [torch.empty_like(t) for _ in range(size)]
    all_l = [torch.empty_like(losses) for _ in range(size)]
    dist.all_gather(all_t, t.contiguous())
    dist.all_gather(all_l, losses.contiguous())
    return torch.cat(all_t), torch.cat(all_l)

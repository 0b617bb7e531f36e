"""Timestep samplers for the DDPM family: uniform, and P1's importance sampling of L_vlb (P1 Sec. 3.3, eq. 18;
improved-diffusion's LossSecondMomentResampler).

A sampler returns (t [B] long, weights [B]); weights = 1 / (T p_t) make the weighted loss an unbiased estimate of the
uniform-t expectation, so L_vlb = sum_t L_t = E_{t~p}[L_t / p_t] = T * E[w L_t].
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
        t = torch.randint(0, self.num_timesteps, (batch_size,), generator=generator).to(device)
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
    """

    def __init__(self, num_timesteps: int, history_per_term: int = 10, uniform_prob: float = 0.001):
        super().__init__(num_timesteps)
        self.history_per_term = history_per_term                    # playbook 3.3 / P1 Sec. 3.3: "previous 10 values"
        self.uniform_prob = uniform_prob                            # improved-diffusion: 0.001 uniform mixture
        self._loss_history = np.zeros([num_timesteps, history_per_term], dtype=np.float64)
        self._loss_counts = np.zeros([num_timesteps], dtype=np.int64)

    def warmed_up(self) -> bool:
        return bool((self._loss_counts == self.history_per_term).all())

    def weights(self) -> np.ndarray:
        if not self.warmed_up():
            return np.ones([self.num_timesteps], dtype=np.float64)
        # P1 eq. 18: p_t ~ sqrt(E[L_t^2]), sum_t p_t = 1.
        w = np.sqrt(np.mean(self._loss_history ** 2, axis=-1))
        w /= np.sum(w)
        w *= 1 - self.uniform_prob
        w += self.uniform_prob / len(w)
        return w

    def sample(self, batch_size: int, device, generator: torch.Generator | None = None):
        w = self.weights()
        p = torch.from_numpy(w / np.sum(w))
        t = torch.multinomial(p, batch_size, replacement=True, generator=generator)
        weights = 1.0 / (len(p) * p[t])
        return t.to(device), weights.to(device)

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-sample losses (all ranks must call this with the gathered values; see gather_losses)."""
        for ti, loss in zip(t.detach().cpu().tolist(), losses.detach().double().cpu().tolist(), strict=False):
            if self._loss_counts[ti] == self.history_per_term:
                # Shift out the oldest loss term.
                self._loss_history[ti, :-1] = self._loss_history[ti, 1:]
                self._loss_history[ti, -1] = loss
            else:
                self._loss_history[ti, self._loss_counts[ti]] = loss
                self._loss_counts[ti] += 1

    def state_dict(self) -> dict:
        return {"kind": "loss-second-moment",
                "history_per_term": self.history_per_term,
                "uniform_prob": self.uniform_prob,
                "loss_history": torch.from_numpy(self._loss_history.copy()),
                "loss_counts": torch.from_numpy(self._loss_counts.copy())}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "loss-second-moment":
            raise ValueError(f"importance-sampler state of kind {state.get('kind')!r} cannot be loaded into "
                             "a loss-second-moment resampler")
        history = np.asarray(torch.as_tensor(state["loss_history"]).double().numpy())
        if history.shape != self._loss_history.shape:
            raise ValueError(f"importance-sampler state has shape {history.shape}, expected {self._loss_history.shape}")
        self._loss_history = history.copy()
        self._loss_counts = np.asarray(torch.as_tensor(state["loss_counts"]).long().numpy()).copy()


def gather_losses(t: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' (t, losses), so that every rank keeps the same sampler state; identity without torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t, losses
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    max_n = int(max(s.item() for s in sizes))
    pad_t = torch.zeros(max_n, dtype=t.dtype, device=t.device)
    pad_l = torch.zeros(max_n, dtype=losses.dtype, device=losses.device)
    pad_t[: t.shape[0]] = t
    pad_l[: losses.shape[0]] = losses
    all_t = [torch.zeros_like(pad_t) for _ in sizes]
    all_l = [torch.zeros_like(pad_l) for _ in sizes]
    dist.all_gather(all_t, pad_t)
    dist.all_gather(all_l, pad_l)
    ts = torch.cat([x[: int(s.item())] for x, s in zip(all_t, sizes, strict=False)])
    ls = torch.cat([x[: int(s.item())] for x, s in zip(all_l, sizes, strict=False)])
    return ts, ls

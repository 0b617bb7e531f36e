"""The dtype of the timestep tensor a sampler feeds the network.

Timesteps are integers up to T - 1 (3999 for T = 4000). bfloat16 holds integers exactly only up to 256 and float16 up
to 2048, so a bf16 x_T would feed t = 1000 for 999 and 748 for 749, and an fp16 one would round every t above 2048.
The timestep tensor is therefore float32 whatever x_T's dtype (float64 stays float64, so a float64 run is float64 end
to end); the network casts it to its own time-embedding dtype.
"""

from __future__ import annotations

import torch

__all__ = ["time_dtype"]


def time_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for a float64 x_T, float32 for everything else (float32, bfloat16, float16)."""
    return torch.float64 if dtype == torch.float64 else torch.float32

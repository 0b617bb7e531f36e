"""Shared set-up for the diffusion-core tests."""

import pytest
import torch

from difftui.engine.diffusion import GaussianDiffusion, GaussianOracle, get_named_beta_schedule

SHAPE = (1, 2, 2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: intra-op threads only add overhead on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def chain():
    """The P1 linear chain, T = 1000, float64 buffers."""
    return GaussianDiffusion(get_named_beta_schedule("linear", 1000))


@pytest.fixture(scope="module")
def oracle():
    """Gaussian data x_0 ~ N(mean, diag(std^2)) of shape SHAPE: every optimal quantity in closed form."""
    mean = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64).reshape(SHAPE)
    std = torch.tensor([0.5, 0.25, 0.8, 1.0], dtype=torch.float64).reshape(SHAPE)
    return GaussianOracle(mean, std=std)

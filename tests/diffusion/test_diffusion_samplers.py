"""Samplers against the exact model of Gaussian data (playbook 0.3, 5.1, 5.3, 5.4, A.7)."""

import pytest
import torch

from difftui.engine.diffusion import (
    DDPMObjective,
    DiscreteVPDenoiser,
    EDMObjective,
    SamplerArgs,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    edm_euler_sample,
    edm_heun_sample,
    edm_sigma_steps,
    edm_stochastic_sample,
)

SHAPE = (1, 2, 2)                  # the conftest oracle's shape


def eps_net(oracle, chain):
    """net(x, t, y) with the exact eps of the Gaussian data (t = trained-chain timestep)."""
    ab = torch.from_numpy(chain.alphas_cumprod)
    return lambda x, t, y=None: oracle.eps(x, ab[t.long()])


def x_T(n=64, seed=0):
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _err(a, b):
    return float((a - b).abs().max())


#----------------------------------------------------------------------------

def test_ddim_eta0_converges_to_the_transported_value(chain, oracle):
    net = eps_net(oracle, chain)
    xT = x_T()
    errs = []
    Ns = (10, 20, 50, 100, 250, 1000)
    for N in Ns:
        x0, nfe = ddim_sample(lambda x, t: net(x, t), xT, chain.alphas_cumprod, steps=N, eta=0.0)
        assert nfe == N and x0.dtype == torch.float64
        start = ddim_timesteps(1000, N)[-1]
        errs.append(_err(x0, oracle.transport_vp(xT, chain.alphas_cumprod[start])))
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False)), errs
    # First order in the step (DDIM eta=0 is Euler in x/sqrt(a), sigma_bar): N * error settles to a constant.
    scaled = [e * N for e, N in zip(errs, Ns, strict=False)]
    assert 0.8 < scaled[2] / scaled[-1] < 1.25, errs
    assert errs[-1] < 6e-3


def test_ddim_matches_the_ddim_code_in_float64(chain):
    """A transcription of the ddim code's generalized_steps (compute_alpha with a prepended zero beta)."""
    g = torch.Generator().manual_seed(5)
    W = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3
    net = lambda x, t: torch.tanh(x.reshape(x.shape[0], 4) @ W + 1e-3 * t[:, None]).reshape(x.shape)
    xT = x_T(8, 1)
    b = torch.from_numpy(chain.betas)
    for tau, eta in (("linear", 0.0), ("quadratic", 0.0), ("linear", 1.0), ("quadratic", 0.5)):
        seq = ddim_timesteps(1000, 20, tau)
        ref_gen = torch.Generator().manual_seed(9)
        x = xT
        for i, j in zip(reversed(seq), reversed([-1] + seq[:-1]), strict=False):
            a = (1 - torch.cat([torch.zeros(1, dtype=torch.float64), b])).cumprod(0)
            at, at_next = a[i + 1], a[j + 1]
            et = net(x, torch.full((8,), float(i), dtype=torch.float64))
            x0_t = (x - et * (1 - at).sqrt()) / at.sqrt()
            c1 = eta * ((1 - at / at_next) * (1 - at_next) / (1 - at)).sqrt()
            c2 = ((1 - at_next) - c1 ** 2).sqrt()
            z = torch.randn(x.shape, generator=ref_gen, dtype=torch.float64) if (eta > 0 and j >= 0) else 0
            x = at_next.sqrt() * x0_t + c1 * z + c2 * et
        ours, _ = ddim_sample(net, xT, chain.alphas_cumprod, steps=20, eta=eta, tau=tau,
                              generator=torch.Generator().manual_seed(9))
        torch.testing.assert_close(ours, x, rtol=1e-11, atol=1e-12)


def test_edm_euler_and_heun_converge_heun_faster(oracle):
    xT = x_T()
    exact = oracle.transport(xT * 80.0, 80.0)
    den = lambda x, s: oracle.denoise(x, s)
    e_euler, e_heun = {}, {}
    for N in (8, 16, 32, 64, 128):
        x, nfe = edm_euler_sample(den, xT, num_steps=N)
        assert nfe == N
        e_euler[N] = _err(x, exact)
        x, nfe = edm_heun_sample(den, xT, num_steps=N)
        assert nfe == 2 * N - 1                                  # playbook 5.3
        e_heun[N] = _err(x, exact)
    for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)):
        assert e_euler[b] < e_euler[a] and e_heun[b] < e_heun[a]
    assert e_heun[128] < 2.5e-3
    # First order: halving the step halves Euler's error.
    assert 1.8 < e_euler[64] / e_euler[128] < 2.2
    # Equal NFE: Heun with N steps (2N - 1) against Euler with 2N - 1 steps.
    for N in (16, 32, 64):
        x, _ = edm_euler_sample(den, xT, num_steps=2 * N - 1)
        assert e_heun[N] < _err(x, exact)
    # Second order: halving the step cuts Heun's error by about 4 in the asymptotic range.
    assert 3.5 < e_heun[64] / e_heun[128] < 4.5


def test_edm_sigma_steps_formula():
    s = edm_sigma_steps(18)
    assert s.dtype == torch.float64 and s.shape == (19,)
    assert float(s[0]) == pytest.approx(80.0, rel=1e-14) and float(s[17]) == pytest.approx(0.002, rel=1e-12)
    assert float(s[-1]) == 0.0
    i = 5
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert float(s[i]) == pytest.approx(expected, rel=1e-14)


def test_edm_stochastic_sampler_reproduces_the_data_distribution(oracle):
    n = 20_000
    xT = x_T(n, 2)
    den = lambda x, s: oracle.denoise(x, s)
    # Churn converges more slowly in N than the deterministic sampler (P3 Sec. 4); N = 128 is well converged here.
    x, nfe = edm_stochastic_sample(den, xT, num_steps=128, S_churn=30, S_tmin=0.01, S_tmax=1.0, S_noise=1.0,
                                   generator=torch.Generator().manual_seed(3))
    assert nfe == 255
    torch.testing.assert_close(x.mean(0), oracle.mu.reshape(SHAPE), atol=0.03, rtol=0)
    torch.testing.assert_close(x.var(0), oracle.lam.reshape(SHAPE), atol=0, rtol=0.05)
    # Churn changes the path: differs from deterministic Heun on the same x_T.
    x_det, _ = edm_heun_sample(den, xT[:16], num_steps=128)
    assert _err(x[:16], x_det) > 1e-3


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large", "learned"])
def test_ddpm_full_chain_reproduces_the_data_variance(chain, oracle, variance):
    n = 16_000
    xT = x_T(n, 4)
    ab = torch.from_numpy(chain.alphas_cumprod)

    def model(x, t):
        i = t.long()
        eps = oracle.eps(x, ab[i])
        if variance != "learned":
            return eps
        return torch.cat([eps, oracle.learned_v(chain, int(i[0]), x)], 1)

    x, nfe = ddpm_sample(model, xT, chain, variance=variance, clip_denoised=False,
                         generator=torch.Generator().manual_seed(7))
    assert nfe == 1000
    torch.testing.assert_close(x.mean(0), oracle.mu.reshape(SHAPE), atol=0.035, rtol=0)
    torch.testing.assert_close(x.var(0), oracle.lam.reshape(SHAPE), atol=0, rtol=0.05)


def test_vp_model_as_edm_denoiser_is_exact_on_its_grid(chain, oracle):
    net = eps_net(oracle, chain)
    den = DiscreteVPDenoiser(lambda x, t: net(x, t), chain.sigmas)
    x = x_T(16, 6) * 3
    for i in (0, 100, 999):
        s = torch.full((16,), chain.sigmas[i], dtype=torch.float64)
        torch.testing.assert_close(den(x, s), oracle.denoise(x, s), rtol=1e-10, atol=1e-12)
    # round_sigma snaps to the grid and the grid limits bound the EDM range.
    assert float(den.round_sigma(torch.tensor(80.0, dtype=torch.float64))) in set(chain.sigmas.tolist())
    assert den.sigma_min == pytest.approx(chain.sigmas[0]) and den.sigma_max > 80


def test_objective_edm_samplers_on_a_ddpm_model(chain, oracle):
    obj = DDPMObjective(chain)
    net = eps_net(oracle, chain)
    xT = x_T(32, 8) * 0.1                                        # stay inside [-1, 1] after the final clip
    den = obj.denoiser(net, torch.float64)
    s0 = float(den.round_sigma(torch.tensor(80.0, dtype=torch.float64)))
    exact = oracle.transport(xT * s0, s0)
    x, nfe = obj.sample(net, xT, SamplerArgs(kind="edm_heun", steps=40))
    assert nfe == 79
    assert _err(x, exact) < 5e-3                                 # rounding to the discrete grid limits accuracy


def test_edm_objective_samples_from_the_exact_denoiser(oracle):
    """An EDM net that makes D exact: F = (D* - c_skip x) / c_out, evaluated from (c_in x, c_noise)."""
    obj = EDMObjective()

    def net(x_in, c_noise, y=None):
        sigma = (4 * c_noise).exp().reshape(-1, 1, 1, 1)
        x = x_in * (sigma ** 2 + 0.25).sqrt()
        c_skip = 0.25 / (sigma ** 2 + 0.25)
        c_out = sigma * 0.5 / (sigma ** 2 + 0.25).sqrt()
        return (oracle.denoise(x, sigma.reshape(-1)) - c_skip * x) / c_out

    xT = x_T(32, 9) * 0.01
    x, nfe = obj.sample(net, xT, SamplerArgs(kind="edm_heun", steps=64))
    assert nfe == 127
    # Same as the plain Heun sampler with the oracle's denoiser (the preconditioning is exact) ...
    x_ref, _ = edm_heun_sample(lambda z, s: oracle.denoise(z, s), xT, num_steps=64)
    torch.testing.assert_close(x, x_ref, rtol=0, atol=1e-12)
    # ... and close to the transported value (Heun's O(h^2) error, here ~1e-4 for these small x_T).
    assert _err(x, oracle.transport(xT * 80.0, 80.0)) < 2e-4


def test_sampler_nfe_and_refusals(chain, oracle):
    net = eps_net(oracle, chain)
    obj = DDPMObjective(chain)
    xT = x_T(4, 10) * 0.1
    cases = {("ddim", 10): 10, ("ddpm", 25): 25, ("covariance", 5): 5, ("edm_euler", 12): 12,
             ("edm_heun", 12): 23, ("edm_stochastic", 12): 23}
    for (kind, N), nfe in cases.items():
        extra = dict(S_churn=30.0, S_tmin=0.01, S_tmax=1.0) if kind == "edm_stochastic" else {}
        x, got = obj.sample(net, xT, SamplerArgs(kind=kind, steps=N, **extra), generator=torch.Generator().manual_seed(0))
        assert got == nfe and x.abs().max() <= 1
    for spec, msg in ((SamplerArgs(kind="ddpm", variance="learned"), "learned"),
                      (SamplerArgs(kind="covariance", variance="ocm"), "OCM head"),
                      (SamplerArgs(kind="ddim", variance="fixed_large"), "eta"),
                      (SamplerArgs(kind="ddpm", eta=0.5), "eta applies"),
                      (SamplerArgs(kind="ddim", steps=2000), "exceed")):
        with pytest.raises(ValueError, match=msg):
            obj.sample(net, xT, spec)
    with pytest.raises(ValueError, match="edm_euler, edm_heun or edm_stochastic"):
        EDMObjective().sample(lambda x, c, y: x, xT, SamplerArgs(kind="ddim"))


#----------------------------------------------------------------------------
# Timesteps are built in float32 whatever x_T's dtype: bf16 rounds 999 to 1000, fp16 every t above 2048.

class TimeRecorder:
    """An eps model (zeros) that records every timestep it is fed, with its dtype."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, t):
        self.seen.append(t)
        return torch.zeros_like(x)


@pytest.mark.parametrize("dtype,T", [(torch.bfloat16, 1000), (torch.float16, 4000)])
def test_samplers_feed_exact_timesteps_for_half_precision_x_T(dtype, T):
    from difftui.engine.diffusion import GaussianDiffusion, covariance_sample, get_named_beta_schedule, space_timesteps
    chain = GaussianDiffusion(get_named_beta_schedule("linear", T))
    xT = torch.randn(2, 1, 2, 2).to(dtype)
    for name, run, expected in (
            ("ddpm", lambda m: ddpm_sample(m, xT, chain, steps=4), sorted(space_timesteps(T, 4), reverse=True)),
            ("covariance", lambda m: covariance_sample(m, xT, chain, steps=4, variance="fixed_large"),
             sorted(space_timesteps(T, 4), reverse=True)),
            ("ddim", lambda m: ddim_sample(m, xT, chain.alphas_cumprod, steps=4), ddim_timesteps(T, 4)[::-1])):
        model = TimeRecorder()
        x, _ = run(model)
        assert x.dtype == dtype
        fed = [t.to(torch.float64) for t in model.seen]
        assert [float(t[0]) for t in fed] == [float(e) for e in expected], name
        assert all(t.dtype == torch.float32 for t in model.seen), name
        assert max(float(t.max()) for t in fed) <= T - 1
    # The VP model seen as an EDM denoiser indexes its grid in float32 too.
    model = TimeRecorder()
    den = DiscreteVPDenoiser(model, chain.sigmas)
    den(xT, torch.full((2,), float(chain.sigmas[T - 1]), dtype=torch.float64))
    assert model.seen[0].dtype == torch.float32 and float(model.seen[0][0]) == T - 1


def test_edm_sampler_clamps_the_sigma_range_to_the_denoisers_grid(oracle):
    """edm's generate.py: sigma_min = max(sigma_min, net.sigma_min), sigma_max = min(sigma_max, net.sigma_max), then
    net.round_sigma. With the defaults (0.002, 80) on the cosine grid (sigma_min 0.00643) an unclamped sampler rounds
    its last sigmas to one repeated grid value: zero-length steps that still cost 2 NFE each."""
    from difftui.engine.diffusion import GaussianDiffusion, edm_sampler, get_named_beta_schedule
    chain = GaussianDiffusion(get_named_beta_schedule("cosine", 1000))
    ab = torch.from_numpy(chain.alphas_cumprod)
    fed = []

    def eps(x, t):
        fed.append(float(t[0]))
        return oracle.eps(x, ab[t.long()])

    den = DiscreteVPDenoiser(eps, chain.sigmas)
    xT = x_T(4, 11) * 0.1
    x, nfe = edm_sampler(den, xT, num_steps=18)                          # the defaults: sigma 0.002 .. 80
    steps = edm_sigma_steps(18, max(0.002, den.sigma_min), min(80.0, den.sigma_max), round_sigma=den.round_sigma)
    assert len(set(steps[:-1].tolist())) == 18                          # the clamped range: 18 distinct grid sigmas
    assert nfe == 35 and len(fed) == 35
    x_ref, _ = edm_sampler(den, xT, num_steps=18, sigma_min=den.sigma_min, sigma_max=80.0, round_sigma=den.round_sigma)
    torch.testing.assert_close(x, x_ref, rtol=0, atol=0)
    # Every Euler step moves: no sigma is fed twice in a row by a zero-length step.
    assert all(a != b for a, b in zip(fed[::2], fed[2::2], strict=False))

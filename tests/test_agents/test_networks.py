import torch

from agents.core.critics import CriticEnsemble, aggregate
from agents.core.networks import MLP
from agents.core.samplers import euler_ode


def test_ensemble_mlp_matches_member_by_member():
    torch.manual_seed(0)
    net = MLP(6, [16, 16], 3, layer_norm=True, ensemble=4)
    x = torch.randn(10, 6)
    out = net(x)
    assert out.shape == (4, 10, 3)
    for k in range(4):
        h = x
        for i, (w, b) in enumerate(zip(net.weights, net.biases)):
            h = h @ w[k] + b[k, 0]
            if i < 2:
                h = torch.nn.functional.gelu(h)
                h = torch.nn.functional.layer_norm(h, h.shape[-1:]) * net.ln_scales[i][k, 0] + net.ln_biases[i][k, 0]
        torch.testing.assert_close(out[k], h)


def test_glorot_uniform_init_and_zero_bias():
    net = MLP(100, [300], 50)
    bound = (6 / 400) ** 0.5
    assert net.weights[0].abs().max() <= bound and net.weights[0].abs().max() > 0.9 * bound
    assert all((b == 0).all() for b in net.biases)


def test_detach_params_sends_gradient_to_inputs_only():
    critic = CriticEnsemble(3, 2, [8], ensemble=2)
    a = torch.randn(5, 2, requires_grad=True)
    critic(torch.randn(5, 3), a, detach_params=True).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


def test_aggregations():
    qs = torch.tensor([[1.0, 4.0], [3.0, 2.0]])
    torch.testing.assert_close(aggregate(qs, "mean"), torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(aggregate(qs, "min"), torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(aggregate(qs, "pessimistic", rho=1.0), torch.tensor([1.0, 2.0]))


def test_euler_ode_integrates_exactly_a_time_linear_field():
    # v(x, t) = 2t integrates to x0 + 1 for any step count with the left-point rule only in the limit;
    # a constant field is exact: x1 = x0 + c.
    x0 = torch.zeros(4, 2)
    out = euler_ode(lambda x, t: torch.full_like(x, 0.5), x0, steps=10, clip=None)
    torch.testing.assert_close(out, torch.full((4, 2), 0.5))
    times = []
    euler_ode(lambda x, t: times.append(float(t[0])) or torch.zeros_like(x), x0, steps=4)
    assert times == [0.0, 0.25, 0.5, 0.75]
    assert euler_ode(lambda x, t: torch.full_like(x, 5.0), x0, steps=2).max() == 1.0  # clipped to the box


def test_mish_equals_torch_mish_in_value_and_gradient():
    import torch.nn.functional as F

    from agents.core.networks import mish

    torch.manual_seed(0)
    # Tiny (F.mish itself), one block, several blocks; plus the extreme tails.
    for shape in [(1, 256), (256, 256), (3000, 256)]:
        x = 4 * torch.randn(shape)
        x.view(-1)[:4] = torch.tensor([-100.0, -20.0, 20.0, 100.0])
        with torch.no_grad():
            torch.testing.assert_close(mish(x), F.mish(x), rtol=2e-6, atol=1e-6)
        xg, xr = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        g = torch.randn(shape)
        mish(xg).backward(g)
        F.mish(xr).backward(g)
        torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-5, atol=1e-5)
    x64 = torch.randn(64, 128, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mish, (x64,), fast_mode=True)
    xb = torch.randn(256, 256).bfloat16()
    with torch.no_grad():
        out = mish(xb)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, F.mish(xb), rtol=8e-3, atol=1e-2)  # one bf16 rounding, as F.mish


def test_torch_init_matches_nn_linear_bounds():
    net = MLP(100, [300], 50, init="torch")
    bound = 1 / 100**0.5
    assert net.weights[0].abs().max() <= bound and net.weights[0].abs().max() > 0.9 * bound
    assert net.biases[0].abs().max() <= bound and net.biases[0].abs().max() > 0.9 * bound


def test_denoiser_net_scalar_and_per_row_levels_agree():
    from agents.core.networks import DenoiserNet

    torch.manual_seed(0)
    for backbone in ("mlp", "ln_resnet"):
        net = DenoiserNet(3, 2, [32, 32], backbone=backbone).eval()
        x, s = torch.randn(5, 2), torch.randn(5, 3)
        out = net(x, 2.5, s)
        assert out.shape == (5, 2)
        torch.testing.assert_close(out, net(x, torch.full((5, 1), 2.5), s))

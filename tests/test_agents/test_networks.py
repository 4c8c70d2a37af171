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

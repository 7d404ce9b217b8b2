"""mh.ssm: the closed-form ZOH equals the matrix exponential; recurrence equals convolution; orders' steps."""

import pytest
import torch

from mh.directions import ORDERS, neighbour_kinds
from mh.ssm import (
    bilinear,
    causal_convolution,
    convolution_kernel,
    euler,
    exact_step_response,
    mamba_rule,
    run_recurrence,
    zoh_diagonal,
    zoh_matrix_exponential,
)


@pytest.mark.parametrize("delta", [1e-3, 0.1, 1.0, 5.0])
def test_zoh_closed_form_equals_the_matrix_exponential(delta):
    a = -torch.rand(6, dtype=torch.float64) * 3 - 0.1
    b = torch.randn(6, dtype=torch.float64)
    decay, drive = zoh_diagonal(a, b, delta)
    full_decay, full_drive = zoh_matrix_exponential(torch.diag(a), b[:, None], delta)
    torch.testing.assert_close(torch.diag(full_decay), decay, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(full_drive[:, 0], drive, rtol=1e-10, atol=1e-14)


def test_zoh_is_exact_for_step_inputs_and_the_others_are_not():
    a, b, c = (
        torch.tensor([-0.5, -2.0], dtype=torch.float64),
        torch.tensor([1.0, 0.5], dtype=torch.float64),
        torch.tensor([1.0, -1.0], dtype=torch.float64),
    )
    delta, steps = 0.2, 50
    exact = exact_step_response(a, b, c, delta * torch.arange(1, steps + 1, dtype=torch.float64))
    ones = torch.ones(steps, dtype=torch.float64)
    errors = {
        rule.__name__: (run_recurrence(*rule(a, b, delta), c, ones) - exact).abs().max().item()
        for rule in (zoh_diagonal, euler, bilinear, mamba_rule)
    }
    assert errors["zoh_diagonal"] < 1e-12
    assert min(errors["euler"], errors["bilinear"], errors["mamba_rule"]) > 1e-4


def test_recurrence_equals_convolution_for_an_lti_system():
    a, b, c = (
        -torch.rand(4, dtype=torch.float64),
        torch.randn(4, dtype=torch.float64),
        torch.randn(4, dtype=torch.float64),
    )
    decay, drive = zoh_diagonal(a, b, 0.3)
    inputs = torch.randn(40, dtype=torch.float64)
    torch.testing.assert_close(
        run_recurrence(decay, drive, c, inputs), causal_convolution(convolution_kernel(decay, drive, c, 40), inputs)
    )


@pytest.mark.parametrize("order", ORDERS)
def test_neighbour_kinds_of_each_order(order):
    kinds = neighbour_kinds(order, 3, 5)
    assert sum(kinds.values()) == 14
    if order.startswith("row"):
        assert kinds == {"horizontal": 12, "vertical": 0, "jump": 2}
    else:
        assert kinds == {"horizontal": 0, "vertical": 10, "jump": 4}

"""The DPSH objective (Eq. 17–18) against its direct formula in float64."""

import math

import pytest
import torch

from mh.binary import label_rows
from mh.losses import DPSHLoss, pair_likelihood, quantization_error, similarity


def direct_pair_loss(codes_a, codes_b, labels_a, labels_b):
    """Σ_ij [log(1 + e^θ) − sθ] / (n·m), written as in the paper, loops and all, in float64."""
    total = 0.0
    for i in range(codes_a.shape[0]):
        for j in range(codes_b.shape[0]):
            theta = 0.5 * float(codes_a[i].double() @ codes_b[j].double())
            s = float((labels_a[i].double() @ labels_b[j].double()) > 0)
            total += math.log1p(math.exp(theta)) - s * theta
    return total / (codes_a.shape[0] * codes_b.shape[0])


def test_pair_likelihood_is_stable_up_to_theta_32_and_beyond():
    theta = torch.tensor([-1000.0, -32.0, -1.0, 0.0, 1.0, 32.0, 1000.0], dtype=torch.float64)
    for s in (0.0, 1.0):
        got = pair_likelihood(theta, torch.full_like(theta, s))
        assert torch.isfinite(got).all()
        direct = torch.log1p(torch.exp(theta[1:-1])) - s * theta[1:-1]
        torch.testing.assert_close(got[1:-1], direct, rtol=1e-12, atol=1e-12)
    assert pair_likelihood(torch.tensor([1000.0]), torch.tensor([0.0])).item() == pytest.approx(1000.0)


@pytest.mark.parametrize("multi_label", [False, True])
def test_in_batch_loss_equals_direct_formula(multi_label):
    codes = torch.tanh(3 * torch.randn(6, 64, dtype=torch.float64))
    labels = (torch.rand(6, 5) < 0.4).double() if multi_label else label_rows(torch.randint(0, 5, (6,)), 5).double()
    loss = DPSHLoss(num_train=6, bits=64, num_classes=5, quantization_weight=0.05, memory_bank=False)
    got = loss(codes, labels)
    expected = direct_pair_loss(codes, codes, labels, labels) + 0.05 * float(((codes - codes.sign()) ** 2).mean())
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_memory_bank_compares_with_all_training_codes():
    loss = DPSHLoss(num_train=10, bits=16, num_classes=3, quantization_weight=0.01)
    codes_1, labels_1, index_1 = torch.tanh(torch.randn(4, 16)), torch.randint(0, 3, (4,)), torch.tensor([0, 2, 4, 6])
    loss.update_bank(codes_1, labels_1, index_1)
    codes_2, labels_2, index_2 = torch.tanh(torch.randn(4, 16)), torch.randint(0, 3, (4,)), torch.tensor([1, 3, 5, 6])
    loss.update_bank(codes_2, labels_2, index_2)
    got = loss(codes_2.requires_grad_(), labels_2)

    bank = torch.zeros(10, 16)
    bank_labels = torch.zeros(10, 3)
    bank[index_1], bank_labels[index_1] = codes_1, label_rows(labels_1, 3)
    bank[index_2], bank_labels[index_2] = codes_2.detach(), label_rows(labels_2, 3)
    expected = direct_pair_loss(codes_2.detach(), bank, label_rows(labels_2, 3), bank_labels)
    expected += 0.01 * float(((codes_2.detach() - codes_2.detach().sign()) ** 2).mean())
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert set(loss.last_terms) == {"likelihood", "quantization"}
    got.backward()
    assert codes_2.grad is not None and torch.isfinite(codes_2.grad).all()


def test_similarity_single_and_multi_label():
    single = label_rows(torch.tensor([0, 1, 0]), 2)
    assert similarity(single, single).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    multi = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    assert similarity(multi, multi).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_quantization_error_is_zero_on_binary_codes():
    assert quantization_error(torch.tensor([[1.0, -1.0]])).item() == 0.0
    assert quantization_error(torch.tensor([[0.5, -0.5]])).item() == pytest.approx(0.25)


def test_bad_labels_and_a_missing_bank_are_explained():
    with pytest.raises(ValueError, match="integer class indices"):
        label_rows(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="no bank to update"):
        DPSHLoss(4, 8, 2, 0.01, memory_bank=False).update_bank(
            torch.zeros(2, 8), torch.tensor([0, 1]), torch.tensor([0, 1])
        )


def test_the_loss_leaves_the_bank_alone():
    loss = DPSHLoss(num_train=4, bits=8, num_classes=2, quantization_weight=0.01)
    loss(torch.tanh(torch.randn(2, 8)), torch.tensor([0, 1]))
    assert loss.bank_codes.abs().sum() == 0 and loss.bank_labels.sum() == 0

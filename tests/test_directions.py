"""The four scan orders: what each visits first, and exact round trips."""

import pytest
import torch

from mh.directions import GROUP_ORDERS, ORDERS, to_grid, to_sequence, visit_order


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("height,width", [(1, 1), (3, 5), (7, 7), (56, 56), (4, 9)])
def test_round_trip_is_exact(order, height, width):
    grid = torch.randn(2, 3, height, width)
    assert torch.equal(to_grid(to_sequence(grid, order), order, height, width), grid)


def test_orders_on_a_2x3_grid():
    # cells numbered row-major:  0 1 2
    #                            3 4 5
    grid = torch.arange(6).view(1, 1, 2, 3)
    assert to_sequence(grid, "row")[0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert to_sequence(grid, "row_reversed")[0, 0].tolist() == [5, 4, 3, 2, 1, 0]
    assert to_sequence(grid, "col")[0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    assert to_sequence(grid, "col_reversed")[0, 0].tolist() == [5, 2, 4, 1, 3, 0]


def test_visit_order_is_the_inverse_permutation():
    steps = visit_order("col", 2, 3)
    assert steps.tolist() == [[0, 2, 4], [1, 3, 5]]
    for order in ORDERS:
        steps = visit_order(order, 4, 5).flatten()
        assert sorted(steps.tolist()) == list(range(20))


def test_group_orders_cover_all_four_directions():
    for orders in GROUP_ORDERS.values():
        assert sorted(orders) == sorted(ORDERS)
    assert GROUP_ORDERS["paper"] == ("row", "row_reversed", "col", "col_reversed")  # Eq. 5: L, R, T, B


def test_unknown_order_and_wrong_length_are_rejected():
    with pytest.raises(ValueError, match="unknown scan order"):
        to_sequence(torch.zeros(1, 1, 2, 2), "diagonal")
    with pytest.raises(ValueError, match="is not 3×3"):
        to_grid(torch.zeros(1, 1, 8), "row", 3, 3)

"""The controls of notebooks 01 and 07 (mh.repro.play): the pictures they redraw, and the controls themselves."""

import os
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mh.binary import pack_codes  # noqa: E402
from mh.codes import CodeSet  # noqa: E402
from mh.repro.play import (  # noqa: E402
    BATCH_VARIABLE,
    discretisation_explorer,
    draw_query_row,
    neighbour_explorer,
    step_response_figure,
)
from mh.repro.reproduce import kernel_environment  # noqa: E402
from mh.search import CodeIndex  # noqa: E402
from mh.splits import CIFAR10_CLASSES  # noqa: E402
from mh.ssm import DISCRETISATIONS  # noqa: E402

A = -torch.tensor([0.3, 1.0, 2.5, 6.0], dtype=torch.float64)
B = torch.tensor([1.0, 0.8, 0.5, 0.3], dtype=torch.float64)
C = torch.tensor([1.0, -0.5, 0.7, 0.4], dtype=torch.float64)


def largest_errors(fig) -> dict[str, float]:
    labels = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    return {label.split(": largest ")[0]: float(label.split(": largest ")[1]) for label in labels}


def test_the_step_response_figure_states_each_rules_error_exact_for_zoh():
    fig = step_response_figure(A, B, C, 0.25)
    errors = largest_errors(fig)
    plt.close(fig)
    assert list(errors) == list(DISCRETISATIONS)
    assert errors["ZOH (exact)"] < 1e-12 < errors["bilinear"] < errors["Euler"]


def test_halving_delta_halves_eulers_error_and_quarters_bilinears():
    at = {delta: step_response_figure(A, B, C, delta, ["Euler", "bilinear"]) for delta in (0.02, 0.01)}
    errors = {delta: largest_errors(fig) for delta, fig in at.items()}
    plt.close("all")
    assert errors[0.02]["Euler"] / errors[0.01]["Euler"] == pytest.approx(2, rel=0.1)
    assert errors[0.02]["bilinear"] / errors[0.01]["bilinear"] == pytest.approx(4, rel=0.1)


@pytest.mark.parametrize("delta, rules", [(0.0, None), (5.0, None), (0.1, "RK4"), (0.1, [])])
def test_a_bad_setting_says_what_is_allowed(delta, rules):
    with pytest.raises(ValueError, match="Δ must be|rules must be among"):
        step_response_figure(A, B, C, delta, rules)


def newest_figure_rules() -> tuple[str, list[str]]:
    fig = plt.figure(plt.get_fignums()[-1])
    return fig.axes[0].get_title(), list(largest_errors(fig))


def test_the_explorer_redraws_the_figure_for_its_controls():
    plt.close("all")
    explorer = discretisation_explorer(A, B, C, delta=0.25)
    controls = {child.description: child for child in explorer.children[:-1]}
    assert controls["Δ"].value == pytest.approx(0.25) and controls["rule"].options == tuple(DISCRETISATIONS)
    explorer.update()  # what displaying it does
    assert newest_figure_rules() == ("Step response, Δ = 0.25 (12 steps)", ["Euler"])
    controls["rule"].value = "bilinear"  # what picking a rule does: the control redraws
    assert newest_figure_rules()[1] == ["bilinear"]
    plt.close("all")


def test_a_batch_run_shows_a_note_instead_of_controls(monkeypatch):
    monkeypatch.delenv(BATCH_VARIABLE, raising=False)
    with kernel_environment(None):  # the environment make reproduce gives its kernels
        notes = [discretisation_explorer(A, B, C), neighbour_explorer(None, None, None, np.zeros(3))]
    assert all("JupyterLab" in note.data and "above" in note.data for note in notes)
    assert "Δ = 0.1" in notes[0].data and "median, best and worst" in notes[1].data
    assert BATCH_VARIABLE not in os.environ  # restored on the way out
    assert hasattr(discretisation_explorer(A, B, C), "children")  # outside a batch run: the live control


class Images:
    def __init__(self, count: int):
        self.count = count

    def image(self, position: int) -> np.ndarray:
        assert 0 <= position < self.count
        return np.full((32, 32, 3), position % 255, dtype=np.uint8)


def test_a_query_row_counts_the_query_class_in_its_top_10_in_distance_order():
    bits, classes = 16, 10
    rng = np.random.default_rng(0)
    class_codes = np.where(rng.random((classes, bits)) < 0.5, 1, -1)
    database = class_codes[np.arange(100) % classes]
    database[[0, 10]] *= -1  # two of class 0's ten items move to the far side of Hamming space
    index = CodeIndex.build(
        pack_codes(database), "flat", bits=bits, labels=np.eye(classes)[np.arange(100) % classes], progress=False
    )
    queries = CodeSet(pack_codes(class_codes[:1]), np.eye(classes)[:1], bits)
    data = SimpleNamespace(query=Images(1), database=Images(100))
    fig, axes = plt.subplots(1, 11)
    facts = draw_query_row(axes, index, queries, data, 0, "best AP", 1.0)
    frames = [ax.spines["top"].get_edgecolor() for ax in axes[1:]]
    plt.close(fig)
    distances = [int(d) for d in facts["Hamming distances"].split()]
    assert facts["class"] == CIFAR10_CLASSES[0] and facts["same class in top 10"] == 8
    assert distances[:8] == [0] * 8 and min(distances[8:]) > 0 and distances == sorted(distances)
    assert frames[:8] == [matplotlib.colors.to_rgba("tab:green")] * 8

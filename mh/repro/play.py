"""Controls a reader can play with in JupyterLab (ipywidgets), each beside the static picture it redraws.

A widget needs a live kernel, so a batch run (``make reproduce``, which sets ``$MH_BATCH_RUN``) shows a note in
its place instead: the static picture drawn just before it, at the default setting, is what the executed notebook
and the course site keep. (Executed by papermill, an ``interactive``'s output widget can also leave the client
waiting for a message the kernel never sends: the rehearsal hung there.) Each explorer is a figure function plus
``ipywidgets.interactive``; the figure functions are tested on their own, so the pictures the controls redraw are
the ones the tests check.

    discretisation_explorer   notebook 01: step size Δ and discretisation rule → step response and its error
    neighbour_explorer        notebook 07: a query position → the query and its top 10 from the index
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from mh.splits import CIFAR10_CLASSES
from mh.ssm import DISCRETISATIONS, exact_step_response, run_recurrence

BATCH_VARIABLE = "MH_BATCH_RUN"  # set to 1 by make reproduce in the kernels it starts
STEP_RESPONSE_HORIZON = 3.0  # time units shown: long enough for the slowest mode of notebook 01 to settle


def step_response_figure(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, delta: float, rules=None):
    """The step response of the diagonal SSM (a, b, c: (N,) each) under each discretisation rule named in
    ``rules`` (one name or a list; default: all of ``mh.ssm.DISCRETISATIONS``) with step Δ, against the exact
    continuous response (paper Eq. 1–3), over t ∈ (0, 3]. Returns the matplotlib figure; the legend states each
    rule's largest error."""
    rules = list(DISCRETISATIONS) if rules is None else [rules] if isinstance(rules, str) else list(rules)
    unknown = [rule for rule in rules if rule not in DISCRETISATIONS]
    if unknown or not rules:
        raise ValueError(f"rules must be among {', '.join(DISCRETISATIONS)}; got {rules!r}")
    if not 0 < delta <= STEP_RESPONSE_HORIZON:
        raise ValueError(f"Δ must be in (0, {STEP_RESPONSE_HORIZON}]; got {delta}")
    steps = max(1, int(round(STEP_RESPONSE_HORIZON / delta)))
    times = delta * torch.arange(1, steps + 1, dtype=a.dtype)
    exact_at_steps = exact_step_response(a, b, c, times)
    fine = torch.linspace(0, STEP_RESPONSE_HORIZON, 400, dtype=a.dtype)[1:]
    fig, (response_ax, error_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    response_ax.plot(fine.numpy(), exact_step_response(a, b, c, fine).numpy(), "k", lw=1.5, label="exact y(t)")
    for number, rule in enumerate(rules):
        simulated = run_recurrence(*DISCRETISATIONS[rule](a, b, float(delta)), c, torch.ones(steps, dtype=a.dtype))
        error = (simulated - exact_at_steps).abs().clamp(min=1e-17)  # exact rules sit at rounding, not at 0
        style = dict(marker="osD^"[number % 4], ms=4, ls="-" if steps > 60 else ":", lw=1)
        response_ax.plot(times.numpy(), simulated.numpy(), **style, label=rule)
        error_ax.semilogy(times.numpy(), error.numpy(), **style, label=f"{rule}: largest {error.max().item():.1e}")
    response_ax.set_xlabel("time t")
    response_ax.set_ylabel("output y for a unit step input")
    response_ax.set_title(f"Step response, Δ = {delta:.3g} ({steps} steps)")
    response_ax.legend(fontsize=8, loc="lower right")
    error_ax.set_xlabel("time t")
    error_ax.set_ylabel("|y_k − y(kΔ)|")
    error_ax.set_title("Error of each rule against the exact response")
    error_ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def batch_note(controls: str, stand_in: str):
    """What an explorer shows in a batch run: a note naming its ``controls``, where to use them, and what stands in
    for them (``stand_in``)."""
    from IPython.display import HTML

    return HTML(
        f"<p><em>Interactive controls ({controls}) appear here when this notebook runs in JupyterLab "
        f"(<code>make lab</code>); in this batch run, {stand_in} stands in for them.</em></p>"
    )


def in_batch_run() -> bool:
    """True inside a kernel started by ``make reproduce`` (no one is there to move a slider)."""
    return os.environ.get(BATCH_VARIABLE) == "1"


def discretisation_explorer(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, delta: float = 0.1):
    """Notebook 01's control: a log slider for Δ (0.001 … 1) and a menu of rules, redrawing
    ``step_response_figure``. Returns the ``ipywidgets.interactive`` to display (in a batch run, ``batch_note``)."""
    if in_batch_run():
        return batch_note("Δ and the discretisation rule", f"the static picture above (every rule at Δ = {delta:g})")
    import ipywidgets as widgets

    def draw(delta: float, rule: str) -> None:
        step_response_figure(a, b, c, delta, rule)
        plt.show()

    return widgets.interactive(
        draw,
        delta=widgets.FloatLogSlider(value=delta, base=10, min=-3, max=0, step=0.05, description="Δ"),
        rule=widgets.Dropdown(options=list(DISCRETISATIONS), value="Euler", description="rule"),
    )


def draw_query_row(row_axes, index, query_set, data, position: int, heading: str, ap: float, k: int = 10) -> dict:
    """One row of notebook 07's figure: the query image at ``position`` of ``query_set`` (a CodeSet), titled
    with ``heading``, its class and its AP, then its top ``k`` from ``index`` (a CodeIndex), framed green when of
    the query's class, red otherwise. ``data`` is the loaded split (its query and database images);
    ``row_axes`` holds k + 1 axes. Returns {"class", "same class in top 10", "Hamming distances"}."""
    distances, positions = index.search(query_set.packed[position : position + 1], k=k)
    query_class = CIFAR10_CLASSES[int(np.argmax(query_set.labels[position]))]
    classes = [CIFAR10_CLASSES[int(np.argmax(index.labels[p]))] for p in positions[0]]
    same = [name == query_class for name in classes]
    row_axes[0].imshow(data.query.image(position))
    row_axes[0].set_title(f"{heading}\n{query_class}, AP {ap:.2f}", fontsize=8)
    for ax, item, distance, hit in zip(row_axes[1:], positions[0], distances[0], same, strict=True):
        ax.imshow(data.database.image(item))
        colour = "tab:green" if hit else "tab:red"
        ax.set_title(f"d={distance}", fontsize=8, color=colour)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3)
    for ax in row_axes:
        ax.set_xticks([])
        ax.set_yticks([])
    hamming = " ".join(map(str, distances[0]))
    return {"class": query_class, "same class in top 10": sum(same), "Hamming distances": hamming}


def neighbour_explorer(index, query_set, data, aps: np.ndarray, k: int = 10):
    """Notebook 07's control: a slider over the query positions, redrawing that query and its top ``k`` with
    its AP (``aps``: (n_q,) per-query AP). Returns the ``ipywidgets.interactive`` to display (in a batch run,
    ``batch_note``)."""
    if in_batch_run():
        return batch_note("a slider over the query positions", "the figure above (its median, best and worst query)")
    import ipywidgets as widgets

    def draw(position: int) -> None:
        fig, axes = plt.subplots(1, k + 1, figsize=(16, 2.4))
        draw_query_row(axes, index, query_set, data, position, f"query {position}", float(aps[position]), k)
        plt.show()

    slider = widgets.IntSlider(value=0, min=0, max=len(aps) - 1, description="query", continuous_update=False)
    return widgets.interactive(draw, position=slider)

# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · State space models and zero-order-hold discretisation
#
# **What this shows.** MambaHash's blocks are selective state space models (paper §3.1, Eq. 1–4). This
# notebook starts from the continuous SSM, discretises it exactly with a zero-order hold (ZOH, Eq. 3) — once
# through a matrix exponential and once in closed form for diagonal A — and compares the exact rule with
# forward Euler, the bilinear rule (S4) and Mamba's kernel rule (Ā exact, B̄ = ΔB). It then shows that a
# linear time-invariant SSM is a convolution, what *selectivity* (input-dependent Δ, B, C) changes, and that
# the project's three scan backends agree.
#
# **What it writes.** `figures/<profile>/01_discretisation_error.{png,pdf}`, `figures/<profile>/01_impulse_responses.{png,pdf}`,
# `figures/<profile>/01_selectivity.{png,pdf}`, `results/tables/<profile>/01_scan_backends.{csv,md}`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mh.scan import cuda_scan_available, selective_scan
from mh.ssm import (DISCRETISATIONS, causal_convolution, convolution_kernel, exact_step_response,
                    run_recurrence, zoh_diagonal, zoh_matrix_exponential)
from mh.repro.play import discretisation_explorer, step_response_figure
from mh.repro.workspace import open_workspace

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)  # nothing is trained here: no profile label

# %% [markdown]
# ## 1. The continuous system and its exact discretisation
#
# $h'(t) = A h(t) + B x(t)$, $y(t) = C h(t)$ (Eq. 1). If the input is held constant over each step of
# length Δ, the state after one step is exactly $h_k = \bar A h_{k-1} + \bar B x_k$ with
# $\bar A = e^{\Delta A}$ and $\bar B = (\Delta A)^{-1}(e^{\Delta A} - I)\,\Delta B$ (Eq. 3).
#
# For any A both blocks come out of **one** matrix exponential of the augmented matrix
# $\Delta\begin{bmatrix}A & B\\ 0 & 0\end{bmatrix}$ (Van Loan's trick). Mamba uses a diagonal A, for
# which the formula is element-wise. The two must agree:

# %%
a = -torch.tensor([0.3, 1.0, 2.5, 6.0], dtype=torch.float64)   # diagonal of A (stable: negative)
b = torch.tensor([1.0, 0.8, 0.5, 0.3], dtype=torch.float64)
c = torch.tensor([1.0, -0.5, 0.7, 0.4], dtype=torch.float64)
rows = []
for delta in (1e-3, 1e-2, 0.1, 1.0):
    decay, drive = zoh_diagonal(a, b, delta)
    full_decay, full_drive = zoh_matrix_exponential(torch.diag(a), b[:, None], delta)
    rows.append({"Δ": delta, "max |Ā_closed − Ā_expm|": (torch.diag(full_decay) - decay).abs().max().item(),
                 "max |B̄_closed − B̄_expm|": (full_drive[:, 0] - drive).abs().max().item()})
pd.DataFrame(rows)

# %% [markdown]
# ## 2. How wrong are the approximate rules?
#
# A unit step input is exactly what ZOH assumes, so the exact continuous solution
# $y(t) = \sum_n c_n b_n (e^{a_n t} - 1)/a_n$ lets us measure each rule's error after one time unit
# ($T = 1$, i.e. $1/\Delta$ steps). Euler and Mamba's $\bar B = \Delta B$ are first order (error ∝ Δ),
# bilinear is second order (∝ Δ²), ZOH is exact up to rounding.

# %%
deltas = np.logspace(-3, -0.3, 12)
errors = {name: [] for name in DISCRETISATIONS}
for delta in deltas:
    steps = int(round(1.0 / delta))
    times = delta * torch.arange(1, steps + 1, dtype=torch.float64)
    exact = exact_step_response(a, b, c, times)
    for name, rule in DISCRETISATIONS.items():
        simulated = run_recurrence(*rule(a, b, float(delta)), c, torch.ones(steps, dtype=torch.float64))
        errors[name].append(max((simulated - exact).abs().max().item(), 1e-17))

fig, ax = plt.subplots(figsize=(7, 4.5))
for (name, values), marker in zip(errors.items(), "osD^"):
    ax.loglog(deltas, values, marker=marker, label=name)
ax.set_xlabel("step size Δ (time units)")
ax.set_ylabel("max |y_k − y(kΔ)| over t ∈ (0, 1]")
ax.set_title("Discretisation error for a step input (4-state diagonal SSM)")
ax.legend()
ws.save_figure(fig, "01_discretisation_error")
plt.show()

# %% [markdown]
# The same errors in time, at a coarse Δ = 0.25: each rule's step response beside the exact curve, and its
# error at every step. Mamba's rule keeps Ā exact but drives with B̄ = Δb, so it stays first order like
# Euler; bilinear is second order; ZOH sits at rounding.

# %%
step_response_figure(a, b, c, 0.25)
plt.show()

# %% [markdown]
# **Try it** (in JupyterLab; the course site has no kernel, so there the picture above stands in): move Δ
# and pick a rule. Where does Euler blow up? (Hint: its Ā = 1 + Δa leaves [−1, 1] for the fastest mode,
# a = −6, once Δ > 1/3; ZOH's e^{Δa} never does.)

# %%
discretisation_explorer(a, b, c, delta=0.25)

# %% [markdown]
# ## 3. An LTI SSM is a convolution
#
# With fixed Ā, B̄, C the recurrence unrolls into $y = K * x$ with kernel $K_k = C \bar A^k \bar B$ —
# the view S4 trains with. The impulse response of each mode decays at its own rate $e^{\Delta a_n}$.

# %%
delta, length = 0.1, 60
decay, drive = zoh_diagonal(a, b, delta)
kernel = convolution_kernel(decay, drive, c, length)
signal = torch.randn(length, dtype=torch.float64, generator=torch.Generator().manual_seed(SEED))
recurrent, convolved = run_recurrence(decay, drive, c, signal), causal_convolution(kernel, signal)
print(f"max |recurrence − convolution| = {(recurrent - convolved).abs().max().item():.2e}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for n in range(len(a)):
    axes[0].plot(np.arange(length) * delta, (c[n] * decay[n] ** torch.arange(length) * drive[n]).numpy(),
                 label=f"mode a = {a[n].item():.1f}")
axes[0].plot(np.arange(length) * delta, kernel.numpy(), "k", lw=2, label="sum = kernel K")
axes[0].set_xlabel("time (kΔ)"); axes[0].set_ylabel("impulse response"); axes[0].legend(fontsize=8)
axes[0].set_title("Impulse response per state mode (ZOH, Δ = 0.1)")
axes[1].plot(recurrent.numpy(), label="recurrence")
axes[1].plot(convolved.numpy(), "--", label="convolution K * x")
axes[1].set_xlabel("step k"); axes[1].set_ylabel("y_k"); axes[1].legend()
axes[1].set_title("Same output, two computations")
ws.save_figure(fig, "01_impulse_responses")
plt.show()

# %% [markdown]
# ## 4. Selectivity: Δ, B and C depend on the input
#
# Mamba makes Δ (and B, C) functions of the current token, so the system is no longer time-invariant and
# the convolution view is gone — but the recurrence still works, and it can now *choose* what to keep: a
# large Δ resets the state towards the current input, a small Δ lets the state carry over. Below, one
# channel with N = 1 (MambaHash uses d_state = 1) is scanned with a constant Δ and with a Δ that spikes on
# "important" tokens. (With Mamba's B̄ = ΔB, a large Δ also scales the written input by Δ: the state
# jumps to about Δ·u = 6 on a marked token, then decays by e^{−0.02} per step.)

# %%
length = 80
generator = torch.Generator().manual_seed(SEED)
u = torch.randn(1, 1, length, generator=generator)
important = torch.zeros(length, dtype=torch.bool)
important[[10, 35, 60]] = True
u[0, 0, important] = 3.0
A = -torch.ones(1, 1)
B = torch.ones(1, 1, length)
C = torch.ones(1, 1, length)
constant = selective_scan(u, torch.full_like(u, 0.05), A, B, C, backend="reference")
selective_delta = torch.where(important, 2.0, 0.02).view(1, 1, length)
selective = selective_scan(u, selective_delta, A, B, C, backend="reference")

fig, ax = plt.subplots(figsize=(10, 3.8))
ax.plot(u[0, 0], color="0.7", label="input u")
ax.plot(constant[0, 0], label="constant Δ = 0.05 (LTI)")
ax.plot(selective[0, 0], label="selective Δ (2.0 on marked tokens, else 0.02)")
ax.scatter(np.flatnonzero(important.numpy()), u[0, 0, important], color="k", zorder=3, label="marked tokens")
ax.set_xlabel("token"); ax.set_ylabel("value")
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4)
ax.set_title("Selectivity: an input-dependent Δ decides what the state remembers")
ws.save_figure(fig, "01_selectivity")
plt.show()

# %% [markdown]
# ## 5. The project's scan backends agree
#
# `mh.selective_scan` has mamba-ssm's `selective_scan_fn` semantics. `"reference"` is the readable loop
# above; `"chunked"` is the fast pure-PyTorch scan used for CPU training; `"cuda"` is mamba-ssm's kernel
# (only on a GPU with mamba-ssm installed). Same inputs, one shape from MambaHash's stage 1 at 64 px:

# %%
generator = torch.Generator().manual_seed(SEED)
b_, d_, l_, n_ = 2, 16, 256, 1
inputs = dict(u=torch.randn(b_, d_, l_, generator=generator), delta=torch.randn(b_, d_, l_, generator=generator),
              A=-torch.rand(d_, n_, generator=generator), B=torch.randn(b_, n_, l_, generator=generator),
              C=torch.randn(b_, n_, l_, generator=generator), D=torch.randn(d_, generator=generator),
              delta_bias=torch.randn(d_, generator=generator), delta_softplus=True)
reference = selective_scan(**inputs, backend="reference")
rows = [{"backend": "reference", "device": "cpu", "max |y − y_reference|": 0.0}]
rows.append({"backend": "chunked", "device": "cpu",
             "max |y − y_reference|": (selective_scan(**inputs, backend="chunked") - reference).abs().max().item()})
if torch.cuda.is_available() and cuda_scan_available():
    on_gpu = {k: v.cuda() if torch.is_tensor(v) else v for k, v in inputs.items()}
    rows.append({"backend": "cuda", "device": torch.cuda.get_device_name(),
                 "max |y − y_reference|": (selective_scan(**on_gpu, backend="cuda").cpu() - reference).abs().max().item()})
else:
    print("cuda backend not available here (no GPU or no mamba-ssm): skipped")
backends = pd.DataFrame(rows)
ws.save_table(backends, "01_scan_backends", "Selective-scan backends vs the reference loop (measured here; devices in the table).")
backends

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check. The experiment
# changes a setting and runs it at smoke scale: write your prediction down before you run it.
#
# 1. **The Δ → 0 limit.** Shrink the step size Δ tenfold, twice. Predict how the gap between the exact ZOH
#    Ā = e^{Δa} and forward Euler's 1 + Δa shrinks, and what B̄/Δ tends to; then compute it with
#    `mh.ssm.zoh_diagonal` and `mh.ssm.euler`.
# 2. **Recurrence or convolution?** Fix Δ, B, C (no selectivity). Predict the largest difference between
#    `mh.ssm.run_recurrence` and the causal convolution with `mh.ssm.convolution_kernel` on 32 random inputs.
# 3. **Experiment: how long does the state remember?** In §4, replace the input by a single marked token
#    (u = 3 at token 10, zero elsewhere) and scan it with a constant Δ of 0.02, 0.05 and 0.5. Predict, before
#    running, how many tokens the output stays above half its peak for each Δ, then measure it.
#
# Worked solutions: [`solutions/01_solutions.py`](solutions/01_solutions.py) (run by the test suite).

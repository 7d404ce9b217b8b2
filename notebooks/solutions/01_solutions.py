# %% [markdown]
# # Solutions to the exercises of notebook 01 (SSM and ZOH)
#
# Each solution states the prediction first, then checks it; the test suite runs this file
# (`tests/test_solutions.py`), so a solution that stops being true fails CI.

# %%
import math

import torch

from mh.scan import selective_scan
from mh.ssm import causal_convolution, convolution_kernel, euler, run_recurrence, zoh_diagonal

torch.manual_seed(0)
a = -torch.rand(4, dtype=torch.float64) * 3 - 0.1  # stable diagonal A
b, c = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)

# %% [markdown]
# ## Exercise 1 — the Δ → 0 limit
#
# **Prediction.** e^{Δa} = 1 + Δa + O(Δ²), so ZOH and forward Euler agree to first order: their
# difference in Ā shrinks like Δ² (a hundredfold per tenfold smaller Δ), and B̄ → Δb for both.

# %%
gaps = []
for delta in (1e-1, 1e-2, 1e-3):
    zoh_decay, zoh_drive = zoh_diagonal(a, b, delta)
    euler_decay, euler_drive = euler(a, b, delta)
    gaps.append((zoh_decay - euler_decay).abs().max().item())
    assert torch.allclose(zoh_drive / delta, b, rtol=2 * delta * a.abs().max().item())
ratios = [gaps[i] / gaps[i + 1] for i in range(2)]
print("max |Ā_ZOH − Ā_Euler| for Δ = 0.1, 0.01, 0.001:", gaps, "ratios:", ratios)
assert all(80 < ratio < 120 for ratio in ratios)  # Δ² scaling: ×100 per decade

# %% [markdown]
# ## Exercise 2 — a time-invariant SSM is a convolution
#
# **Prediction.** With Δ, B, C fixed (no selectivity) the recurrence h_k = Ā h_{k−1} + B̄ x_k, y_k = C h_k
# equals the causal convolution of x with K_k = C Ā^k B̄ — to rounding.

# %%
decay, drive = zoh_diagonal(a, b, 0.1)
inputs = torch.randn(32, dtype=torch.float64)
recurrent = run_recurrence(decay, drive, c, inputs)
convolved = causal_convolution(convolution_kernel(decay, drive, c, len(inputs)), inputs)
print("max |recurrence − convolution| =", (recurrent - convolved).abs().max().item())
assert torch.allclose(recurrent, convolved, atol=1e-12)

# %% [markdown]
# ## Exercise 3 — experiment: how long does the state remember?
#
# **Setting changed.** §4 scans one channel with A = −1, B = C = 1 and a constant Δ. Write a single marked
# token (u = 3 at token 10, zero elsewhere) and scan it with Δ = 0.02, 0.05 and 0.5.
#
# **Prediction.** With Mamba's rule the token writes Δ·u into the state, which then decays by e^{−Δ} each
# step. So the output halves every ln 2 / Δ tokens: about 35 tokens at Δ = 0.02, 14 at Δ = 0.05 and 1.4 at
# Δ = 0.5 — a tenfold larger Δ forgets ten times faster (and writes ten times louder).

# %%
length, marked = 120, 10
impulse = torch.zeros(1, 1, length)
impulse[0, 0, marked] = 3.0
ones = torch.ones(1, 1, length)
for delta in (0.02, 0.05, 0.5):
    output = selective_scan(impulse, torch.full_like(impulse, delta), -torch.ones(1, 1), ones, ones,
                            backend="reference")[0, 0]
    peak = output[marked].item()
    half_life = int((output[marked:] >= peak / 2).sum().item())  # tokens until the output falls below half
    print(f"Δ = {delta}: peak {peak:.3f} (Δ·u = {3 * delta:.3f}), above half for {half_life} tokens, "
          f"ln 2 / Δ = {math.log(2) / delta:.1f}")
    assert math.isclose(peak, 3 * delta, rel_tol=1e-5)
    assert half_life == math.ceil(math.log(2) / delta)

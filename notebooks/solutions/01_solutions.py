# %% [markdown]
# # Solutions to the exercises of notebook 01 (SSM and ZOH)
#
# Each solution states the prediction first, then checks it; the test suite runs this file
# (`tests/test_solutions.py`), so a solution that stops being true fails CI.

# %%
import torch

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

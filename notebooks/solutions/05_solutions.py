# %% [markdown]
# # Solutions to the exercises of notebook 05 (parameters and FLOPs)

# %%
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from mh.model import AdaptiveFeatureEnhancement, afem_ratio_for_bits
from mh.registry import build_hashing_model
from mh.repro.complexity import counted_analysis

# %% [markdown]
# ## Exercise 1 — AFEM's parameters from 48 to 64 bits
#
# **Prediction.** λ = 2^(K//16) goes from 8 to 16, so the widened width λC doubles (C = 512: 4,096 → 8,192).
# The two 1×1 convolutions (C → λC and λC → C, 2·C·λC weights) grow linearly in λ; the grouped 1×1/3×3/5×5
# branches, with groups = C, hold λC · λ · (1 + 9 + 25) weights — quadratic in λ. At λ = 8 the 1×1
# convolutions hold 4.2 M weights against the branches' 1.1 M, so AFEM grows by more than 2× but far less
# than 4×: about 2.4×.

# %%
def afem_parameters(bits: int, dim: int = 512) -> int:
    ratio = afem_ratio_for_bits(bits)
    return sum(p.numel() for p in AdaptiveFeatureEnhancement(dim, ratio, dim).parameters())


def afem_by_hand(bits: int, dim: int = 512) -> int:
    ratio = afem_ratio_for_bits(bits)
    wide = dim * ratio
    return (dim * wide + wide) + sum(wide * ratio * k * k + wide for k in (1, 3, 5)) + (wide * dim + dim)


at48, at64 = afem_parameters(48), afem_parameters(64)
print(f"AFEM at 48 bits: {at48:,}; at 64 bits: {at64:,}; ratio {at64 / at48:.2f}")
assert (at48, at64) == (afem_by_hand(48), afem_by_hand(64))
assert 2.3 < at64 / at48 < 2.5

# %% [markdown]
# ## Exercise 2 — the hash layer's FLOPs
#
# **Prediction.** Linear(512, K) on one pooled vector costs 512·K multiply-adds; fvcore counts one
# multiply-add as one FLOP, so 24,576 at 48 bits — nothing next to the backbone's billions.

# %%
layer = nn.Linear(512, 48)
flops = FlopCountAnalysis(layer, torch.zeros(1, 512)).unsupported_ops_warnings(False).total()
print("fvcore FLOPs of the hash layer at 48 bits:", flops)
assert flops == 512 * 48

# %% [markdown]
# ## Exercise 3 — experiment: FLOPs against image size
#
# **Setting changed.** The input size. Count the FLOPs of the reduced MambaHash (the smoke and cpu
# network, 48 bits) at 32, 64 and 128 px with `mh.repro.complexity.counted_analysis`, the scan counted.
#
# **Prediction.** Every layer before the pooling works per position (convolutions, projections, the scan
# along its sequence), and doubling the side gives 4× the positions, so the count grows about 4× per doubling
# — not 16×, as attention over all token pairs would. Only the hash layer after the pooling is fixed, and it
# is tiny.

# %%
network = build_hashing_model("mambahash", 48, image_size=128, size="reduced")
counts = {side: counted_analysis(network, image_size=side).total() for side in (32, 64, 128)}
ratios = [counts[64] / counts[32], counts[128] / counts[64]]
print("FLOPs:", {side: f"{count / 1e6:.1f} M" for side, count in counts.items()},
      "| ratio per doubling:", [round(ratio, 2) for ratio in ratios])
assert all(3.5 < ratio < 4.5 for ratio in ratios)

# %% [markdown]
# # Solutions to the exercises of notebook 08 (MpVH)

# %%
import torch

from mh.family.mpvh import MpVH, routing_gates
from mh.losses import PairwiseRegressionLoss

# %% [markdown]
# ## Exercise 1 — how many routed experts can pass the threshold
#
# **Prediction.** The normalised gates ŝ_n are positive and sum to 1, so at most ⌊1/ε⌋ of them can reach ε:
# one at ε = 0.6 (two gates of 0.6 would already sum to 1.2), three at ε = 0.3. With many experts of
# similar scores every gate is near 1/n and none passes.

# %%
torch.manual_seed(0)
scores = 4 * torch.randn(10_000, 11)  # 11 earlier layers, as at layer 12 of ViT-B/16
for threshold, most in ((0.6, 1), (0.3, 3)):
    passing = (routing_gates(scores, threshold) > 0).sum(dim=1)
    print(f"ε = {threshold}: at most {passing.max().item()} expert(s) passed; none passed for "
          f"{(passing == 0).float().mean().item():.0%} of the images")
    assert passing.max().item() <= most
assert (routing_gates(torch.zeros(1, 11), 0.6) == 0).all()  # equal scores: every gate is 1/11

# %% [markdown]
# ## Exercise 2 — one prompter shared by all layers
#
# **Prediction.** The paper's default has 12 prompters and 12 query experts φ_Q; the shared network keeps
# one of each, so it saves 11 × (one prompter + one φ_Q). With D = 768 a prompter holds 1,641,984
# parameters (CSM 448,512; the two D×D Linears 1,181,184; the rest norms and the depthwise convolution)
# and φ_Q 589,824: 11 × 2,231,808 = 24,549,888.

# %%
with torch.device("meta"):
    per_layer, shared = MpVH(64), MpVH(64, prompter="shared")
count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
saved = count(per_layer) - count(shared)
one_prompter, one_query = count(per_layer.prompters[0]), count(per_layer.query_experts[0])
print(f"saved {saved:,} = 11 × ({one_prompter:,} + {one_query:,})")
assert (one_prompter, one_query) == (1_641_984, 589_824)
assert saved == 11 * (one_prompter + one_query) == 24_549_888

# %% [markdown]
# ## Exercise 3 — the scale k of L_H
#
# **Prediction.** L_H is smallest when h_iᵀh_j = k·S_ij. With k = K/2 a similar pair is pulled towards an
# inner product of K/2. For sign codes hᵀh = K − 2·d_H, so K/2 means a Hamming distance of K/4: similar
# images are asked to differ in a quarter of their bits instead of none. Two identical codes therefore pay
# a penalty of (K − K/2)² = K²/4 at k = K/2, and none at k = K.

# %%
bits = 16
code = torch.ones(1, bits)
pair = torch.cat([code, code])  # two identical ±1 codes of one class
labels = torch.tensor([0, 0])
for scale, expected in ((bits, 0.0), (bits / 2, (bits / 2) ** 2)):
    criterion = PairwiseRegressionLoss(2, bits, 10, scale=scale)
    criterion(pair, labels)
    pairs_term = criterion.last_terms["pairs"].item()
    print(f"k = {scale:g}: L_H of two identical codes = {pairs_term:g}")
    assert abs(pairs_term - expected) < 1e-9

# %% [markdown]
# ## Exercise 4 — experiment: does a routed expert pass in early and late layers?
#
# **Setting changed.** The number of routed experts, which is the layer's depth: layer l routes over the
# l − 1 prompts of the layers before it. Draw expert scores as in exercise 1 (4 · N(0, 1)) for layers 2 to 12
# and count how often an expert passes ε = 0.6.
#
# **Prediction.** At layer 2 there is one routed expert, its normalised gate is 1, and it always passes.
# With more experts the gate mass spreads: σ(4z) is near 1 for about half of them, so the largest gate is
# about 2 / (l − 1) and falls below 0.6 once a few experts are confident. The passing rate drops fast with depth
# and is small by layer 12: with scores this spread, the late layers would be fed by the shared expert alone.

# %%
torch.manual_seed(0)
passing_rate = {}
for layer in range(2, 13):
    gates = routing_gates(4 * torch.randn(10_000, layer - 1), threshold=0.6)
    passing_rate[layer] = (gates > 0).any(dim=1).float().mean().item()
print("share of images with a routed expert passing ε = 0.6, by layer:",
      {layer: round(rate, 3) for layer, rate in passing_rate.items()})
rates = list(passing_rate.values())
assert rates[0] == 1.0 and rates[-1] < 0.1
assert all(later <= earlier + 0.02 for earlier, later in zip(rates, rates[1:], strict=False))

# %% [markdown]
# # Solutions to the exercises of notebook 09 (CAGMH)

# %%
import warnings

import numpy as np
import torch

from mh.family.cagmh import CAGMH, tokenize
from mh.family.cagmh_losses import hadamard_centres
from mh.family.paired_data import class_sets
from mh.metrics import chance_map

# %% [markdown]
# ## Exercise 1 — Hadamard centres
#
# **Prediction.** With K = 16 the stacked matrix [H₁₆; −H₁₆] has 32 rows, so 10 classes take the first 10
# rows of H₁₆, which are pairwise orthogonal: every two centres differ in exactly K/2 = 8 bits. With 40
# classes the 32 rows run out: rows 17–32 are −H₁₆ (each at distance 16 from its own +H row, 8 from the
# others) and 8 random rows are drawn. The rule asks for more than K/4 = 4 bits between any two centres, but
# 32 fixed rows leave little room in 16 bits: 20 draws may not find it, and then the last draw is kept
# (with a warning) — some classes end up only 2 bits apart.

# %%
def hamming(centres):
    distances = (centres.shape[1] - centres @ centres.t()) / 2
    return distances[~torch.eye(len(centres), dtype=torch.bool)]

ten = hamming(hadamard_centres(10, 16))
print("10 classes, K = 16: distances", sorted(set(ten.tolist())))
assert set(ten.tolist()) == {8.0}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    forty = hadamard_centres(40, 16)
distances = hamming(forty)
print("40 classes, K = 16: smallest", distances.min().item(), "largest", distances.max().item())
print("warning:", caught[0].message if caught else "none")
assert distances.max().item() == 16 and torch.equal(forty[16:32], -forty[:16])
assert (distances.min().item() > 4) == (not caught)
assert hamming(hadamard_centres(40, 64)).min().item() == 32  # 2K = 128 ≥ 40: Hadamard rows only

# %% [markdown]
# ## Exercise 2 — the sign of the cubic term
#
# **Prediction.** At ũ = 0.9, d/dũ (|ũ| − 1)³ = 3(|ũ| − 1)² > 0: gradient descent lowers ũ, towards 0.
# d/dũ (1 − |ũ|)³ = −3(1 − |ũ|)² < 0: descent raises ũ, towards 1 — the fixed term pulls codes to binary.

# %%
u = torch.tensor(0.9, requires_grad=True)
released_gradient = torch.autograd.grad((u.abs() - 1) ** 3, u)[0].item()
fixed_gradient = torch.autograd.grad((1 - u.abs()) ** 3, u)[0].item()
print(f"released: {released_gradient:+.3f} (step moves ũ down), fixed: {fixed_gradient:+.3f} (step moves ũ up)")
assert released_gradient > 0 > fixed_gradient

# %% [markdown]
# ## Exercise 3 — a batch of one in the released mode
#
# **Prediction.** The scan is causal over the batch, so the Mamba output of the *first* sample does not
# depend on the samples after it, while the last one's does. But the enhancement M is a B × B matrix over the
# batch, so even the first sample's code changes with its neighbours: neither code equals the batch-of-one code.

# %%
torch.manual_seed(0)
tiny = dict(image_size=32, embed_dim=32, patch_size=16, vision_width=64, vision_layers=1, text_width=32,
            text_heads=2, text_layers=1, hash_hidden=64, d_state=4)
model = CAGMH(16, sequence_axis="batch", **tiny).eval()
images, captions = torch.randn(5, 3, 32, 32), tokenize(["a cat", "a dog", "a ship", "a frog", "a bird"])
with torch.no_grad():
    alone = model(images[:1], captions[:1])[0][0]
    first = model(images, captions)[0][0]
    last = model(images.roll(-1, 0), captions.roll(-1, 0))[0][-1]
    features = torch.cat([model.clip.encode_image(images), model.clip.encode_text(captions)], -1)
    mamba_alone = model.mamba(features[None, :1])[0, 0]
    mamba_first = model.mamba(features[None])[0, 0]
print("first in the batch == alone:", torch.allclose(first, alone, atol=1e-6),
      "| last == alone:", torch.allclose(last, alone, atol=1e-6),
      "| Mamba output, first == alone:", torch.allclose(mamba_first, mamba_alone, atol=1e-6))
assert torch.allclose(mamba_first, mamba_alone, atol=1e-6)
assert not torch.allclose(first, alone, atol=1e-6) and not torch.allclose(last, alone, atol=1e-6)

# %% [markdown]
# ## Exercise 4 — experiment: how low is chance for each mosaic design?
#
# **Setting changed.** The synthetic task of notebook 09: 2 or 4 tiles per mosaic, and relevance by a shared
# class or by the same class set. Draw the tiles' classes for 1,000 queries and 4,000 database mosaics (the
# labels only: chance does not depend on the pixels) and compute `mh.metrics.chance_map` for each design.
#
# **Prediction.** Chance is about the share of relevant items. Two mosaics of 4 tiles share at least one class
# unless all 16 draws avoid each other: 1 − (9/10)⁴ per tile, about 0.82 for the mosaic — the old design,
# where a random ranking already scored about 0.8. With 2 tiles the shared-class share falls to about 0.36.
# Requiring the same class set makes relevance rare: two tiles give a given unordered pair with probability
# 2/100 (1/100 for a doubled class), so about Σ p² ≈ 0.019; with 4 tiles the 715 sets make it about 0.002.
# At such low rates a floor shows: even one relevant item at a random rank among N scores H_N / N on average
# (about 0.002 for N = 4,000), so expect about 0.021 and 0.004.

# %%
rng = np.random.default_rng(0)
chance = {}
for tiles in (2, 4):
    index = {classes: position for position, classes in enumerate(class_sets(tiles))}
    drawn = {part: rng.integers(0, 10, size=(count, tiles)) for part, count in (("query", 1000), ("database", 4000))}
    shared = {part: np.eye(10)[classes].max(axis=1) for part, classes in drawn.items()}
    same_set = {part: np.eye(len(index))[[index[tuple(sorted(row))] for row in classes]]
                for part, classes in drawn.items()}
    chance[tiles, "shared class"] = chance_map(torch.tensor(shared["query"]), torch.tensor(shared["database"]))
    chance[tiles, "class set"] = chance_map(torch.tensor(same_set["query"]), torch.tensor(same_set["database"]))
for (tiles, relevance), level in chance.items():
    print(f"{tiles} tiles, relevance by {relevance}: chance mAP {level:.4f}")
assert 0.78 < chance[4, "shared class"] < 0.86 and 0.32 < chance[2, "shared class"] < 0.40
assert 0.017 < chance[2, "class set"] < 0.025 and 0.003 < chance[4, "class set"] < 0.005

# %% [markdown]
# # Solutions to the exercises of notebook 07 (retrieval at scale)

# %%
import numpy as np

from mh.binary import pack_codes
from mh.search import CodeIndex

rng = np.random.default_rng(0)
bits = 64

# %% [markdown]
# ## Exercise 1 — a radius-1 lookup
#
# **Prediction.** Put a query's exact copy and its K one-bit neighbours (each bit flipped once) into a
# database of random codes. Within Hamming radius 1 there are exactly 1 + K = 65 items (a random 64-bit
# code is within radius 1 of the query with probability 65 / 2^64: never).

# %%
query = np.where(rng.random(bits) < 0.5, 1, -1)
neighbours = np.repeat(query[None], bits, axis=0)
neighbours[np.arange(bits), np.arange(bits)] *= -1
others = np.where(rng.random((10_000, bits)) < 0.5, 1, -1)
database = np.concatenate([others[:5000], query[None], neighbours, others[5000:]])
index = CodeIndex.build(pack_codes(database), "flat", bits=bits, progress=False)
(distances, positions), = index.within_radius(pack_codes(query[None]), radius=1)
print(f"{len(positions)} items within radius 1; distances: {np.bincount(distances)}")
assert len(positions) == 1 + bits and sorted(np.bincount(distances).tolist()) == [1, bits]

# %% [markdown]
# ## Exercise 2 — memory of a million codes
#
# **Prediction.** 64-bit codes are 8 bytes each: a million take 8 MB in a flat index, 32× less than
# 64-dimensional float32 vectors (256 bytes each).

# %%
packed = pack_codes(np.where(rng.random((1_000_000, bits)) < 0.5, 1, -1))
print(f"{packed.nbytes / 1e6:.1f} MB of packed codes; float32 vectors: {1_000_000 * bits * 4 / 1e6:.0f} MB")
assert packed.nbytes == 8_000_000

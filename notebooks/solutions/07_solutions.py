# %% [markdown]
# # Solutions to the exercises of notebook 07 (retrieval at scale)

# %%
from math import comb

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

# %% [markdown]
# ## Exercise 3 — experiment: how full is a radius-2 ball at 16 and at 64 bits?
#
# **Setting changed.** The code length of a database of 100,000 random codes: 16 bits, then 64. Look up
# 20 random queries within Hamming radius 2.
#
# **Prediction.** A random K-bit code lies within radius 2 of a query with probability
# (1 + K + K(K − 1)/2) / 2^K: 137 / 65,536 at 16 bits, so about 209 hits per query among 100,000 codes (a
# Poisson count, give or take √209 ≈ 14); at 64 bits 2,081 / 2^64 — no hit at all. Hash lookups within a small
# radius are a short-code tool: with long codes the ball is empty unless the codes are trained to cluster.

# %%
hits = {}
for bits in (16, 64):
    database = np.where(rng.random((100_000, bits)) < 0.5, 1, -1)
    queries = np.where(rng.random((20, bits)) < 0.5, 1, -1)
    index = CodeIndex.build(pack_codes(database), "flat", bits=bits, progress=False)
    hits[bits] = np.array([len(positions) for _, positions in index.within_radius(pack_codes(queries), radius=2)])
    expected = 100_000 * sum(comb(bits, r) for r in range(3)) / 2**bits
    print(f"{bits} bits: {hits[bits].mean():.1f} hits per query on average (expected {expected:.3g})")
assert abs(hits[16].mean() - 209.0) < 3 * np.sqrt(209.0 / 20) and hits[64].sum() == 0

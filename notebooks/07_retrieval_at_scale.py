# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Retrieval at scale: FAISS binary indexes
#
# **What this shows.** The paper's title promises *large-scale* retrieval. Hash codes are what makes it
# large-scale: a 64-bit code is 8 bytes, compared by one XOR and one popcount. Here the trained MambaHash
# codes go into a FAISS binary index that answers a CIFAR-10 query (a picture of the query and its top 10),
# and then a scaling study on synthetic codes shows what each index type costs and returns, from 10⁴ to
# 10⁶ items (10⁷ in the `gpu` profile), next to float embeddings in `faiss.IndexFlatL2`.
#
# **Index types** (`mh.search`): `flat` (exact: every code compared), `hash` (a hash table on the first
# bits, probed within a few bit flips — the classic hashing lookup), `multihash` (multi-index hashing: the
# code cut into substrings, one table each), `ivf` (k-means cells in Hamming space) and `hnsw` (a graph).
# The flat index returns exactly `mh.metrics`' ranking (ties by database position); the others trade
# exactness for speed, measured as recall@100 against the flat index.
#
# **What it writes.** `results/tables/<profile>/07_scaling.{csv,md}`, `results/tables/<profile>/07_retrieval_example.{csv,md}`,
# `figures/<profile>/07_query_top10.{png,pdf}`, `figures/<profile>/07_scaling.{png,pdf}`, and the run's index file
# `results/runs/<profile>/…/database-flat.faissindex`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."
BITS = 48
SIZES = {"smoke": [10_000, 100_000, 1_000_000], "cpu": [10_000, 100_000, 1_000_000], "gpu": [10_000, 100_000, 1_000_000, 10_000_000],
         "paper": [10_000, 100_000, 1_000_000, 10_000_000], "rehearse": [1_000, 10_000]}
SCALING_BITS = [16, 32, 64]
INDEX_KINDS = ["flat", "hash", "multihash", "ivf", "hnsw"]
MAX_SIZE = {"hnsw": 100_000, "hash": 1_000_000}
QUERIES = 100
K = 100
REMEASURE = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mh.codes import load_code_sets
from mh.metrics import mean_average_precision, query_average_precisions, showcase_queries
from mh.repro.play import draw_query_row, neighbour_explorer
from mh.repro.run_cache import ensure_run
import mh.repro.scaling
import mh.search
from mh.repro.scaling import bit_balance, scaling_study
from mh.repro.timings import cached_measurement, describe_measurement
from mh.repro.workspace import open_workspace
from mh.search import CodeIndex, build_run_index, index_mean_average_precision

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
profile = ws.profile
print(ws.label())

# %% [markdown]
# ## 1. The trained codes in an index
#
# The run is notebook 03's MambaHash (trained here if it is missing). `python -m mh.search build RUN_DIR`
# does what the next cell does: it indexes the run's database codes and saves the index beside the run.

# %%
data = ws.data()
record = ensure_run(ws.table1_config(BITS), data)
index = CodeIndex.load(build_run_index(record.run_dir, "flat"))
sets = load_code_sets(record.run_dir / "codes.npz")
query = sets["query"]
via_index = index_mean_average_precision(index, query, topk=None)
direct = mean_average_precision(query.codes, sets["database"].codes, query.labels, sets["database"].labels)
print(f"{len(index)} codes of {index.bits} bits, {index.bits // 8} bytes each")
print(f"mAP from the FAISS ranking {via_index:.6f} | mh.metrics {direct:.6f} | difference {abs(via_index - direct):.1e}")

# %% [markdown]
# ## 2. Three queries and their top 10, chosen by a rule
#
# The index returns positions in the database; the run recorded each position's item in the dataset (its pool
# index, `index.ids`), the same mapping the loaded data holds (`data.database.indices`), so the images come
# straight from the CIFAR-10 pool. Which queries are shown is a stated rule, never a choice by eye
# (`mh.metrics.showcase_queries`): the query with the best AP, the one at the median AP and the one with the
# worst, labelled as such. Green: same class as the query.

# %%
print("index ids = the dataset's pool indices:", np.array_equal(index.ids, data.database.indices))
aps = query_average_precisions(query.codes, sets["database"].codes, query.labels, sets["database"].labels)
shown = dict(zip(["best AP", "median AP", "worst AP"], showcase_queries(aps)))
rows, fig, axes = [], *plt.subplots(len(shown), 11, figsize=(16, 2.3 * len(shown)), squeeze=False)
for row_axes, (rule, query_position) in zip(axes, shown.items()):
    facts = draw_query_row(row_axes, index, query, data, query_position, rule, float(aps[query_position]))
    rows.append({"shown as": rule, "query position": query_position, "class": facts["class"],
                 "AP": round(float(aps[query_position]), 4), "same class in top 10": facts["same class in top 10"],
                 "Hamming distances": facts["Hamming distances"]})
fig.suptitle(f"FAISS flat index, {BITS}-bit MambaHash codes — {ws.label()}", fontweight="bold", y=1.02)
ws.save_figure(fig, "07_query_top10")
plt.show()
showcase = pd.DataFrame(rows)
ws.save_table(showcase, "07_retrieval_example",
              f"Best, median and worst query by AP, top 10 from the flat index ({ws.label()}).")
showcase

# %% [markdown]
# What the three rows say, read from the table (so the sentence follows the run, whatever it gives): the mAP
# above is the mean of all the APs this rule sorts, and the median row is the typical query.

# %%
for row in showcase.itertuples(index=False):
    print(f"{row[0]}: a {row[2]} query (AP {row[3]:.2f}) finds {row[4]} of 10 of its class in its top 10, "
          f"at Hamming distances {row[5]}")

# %% [markdown]
# **Try it** (in JupyterLab; the course site has no kernel, so there the three rows above stand in): slide
# through the queries and watch where the red frames come from — which classes does this network confuse?

# %%
neighbour_explorer(index, query, data, aps)

# %% [markdown]
# ## 3. Scaling: build time, latency, throughput and recall of every index type
#
# Synthetic databases whose bits have the trained codes' balance (the fraction of +1 per bit, cycled to
# 16, 32 and 64 bits); 100 near-duplicate queries (database items with 10 % of their bits flipped). Latency
# is one query at a time (p50 and p99 over 50 queries), throughput a batch of 100. HNSW is built only up
# to the sizes in `MAX_SIZE` (its graph construction is the slowest step on a CPU).

# %%
balance = bit_balance(sets["database"].codes, max(SCALING_BITS))
print("bit balance of the trained codes (fraction of +1):", np.round(balance[:BITS], 2))
sizes = SIZES[profile.name]
compared_at = min(1_000_000, max(sizes))  # where mh.codes.retrieve is timed beside FAISS (section 4)
settings = dict(balance=balance, sizes=sizes, bit_lengths=SCALING_BITS, kinds=INDEX_KINDS, max_size=MAX_SIZE,
                queries=QUERIES, k=K, seed=SEED, brute_force_at=compared_at)
study, timing = cached_measurement("07_scaling", lambda: scaling_study(**settings), settings,
                                   (mh.repro.scaling, mh.search), ws.timings, REMEASURE)
print(describe_measurement(timing))
ws.save_table(study.round(4), "07_scaling",
              f"FAISS binary indexes on synthetic codes with the trained codes' bit balance, {QUERIES} near-duplicate "
              f"queries, recall@{K} against exact search (tie-aware); float IndexFlatL2 beside them ({ws.label()}).")
study.round(3)

# %% [markdown]
# ## 4. At a million 64-bit codes
#
# Exact search in FAISS against `mh.codes.retrieve` (numpy popcount and a stable sort, one query at a time)
# on the same queries, and the approximate indexes' recall at their latency. The flat index appears twice:
# with `mh.metrics`' tie order (ties by position: a second pass fetches every item tied at the 100th
# distance) and with FAISS's own order among equally distant items (one pass).

# %%
million = study.query("`database size` == @compared_at and bits == 64").set_index("index")
print(f"{compared_at:,} codes of 64 bits")
brute_force = million.loc["mh.codes.retrieve (numpy)", "queries/s"]
for name in ("flat (FAISS tie order)", "flat"):
    print(f"FAISS {name}: {million.loc[name, 'queries/s']:,.0f} queries/s against mh.codes.retrieve's "
          f"{brute_force:,.1f}: {million.loc[name, 'queries/s'] / brute_force:,.1f}× faster")
million[["build s", "p50 ms", "p99 ms", "queries/s", f"recall@{K}", "bytes/item"]].round(3)

# %%
binary = study[~study["index"].isin(["float IndexFlatL2", "mh.codes.retrieve (numpy)"])]
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
at64 = study.query("bits == 64 and index != 'mh.codes.retrieve (numpy)'")
sns.lineplot(data=at64, x="database size", y="p50 ms", hue="index", marker="o", ax=axes[0])
sns.lineplot(data=at64, x="database size", y="build s", hue="index", marker="o", ax=axes[1], legend=False)
sns.scatterplot(data=binary, x="p50 ms", y=f"recall@{K}", hue="index", style="bits", size="database size",
                sizes=(30, 200), ax=axes[2])
for ax in axes[:2]:
    ax.set_xscale("log"); ax.set_yscale("log")
axes[2].set_xscale("log")
axes[0].set_title("Query latency, 64 bits (p50)"); axes[1].set_title("Build time, 64 bits")
axes[2].set_title(f"Recall@{K} against latency, all sizes and bits")
axes[2].legend(fontsize=7, loc="lower right")
fig.suptitle(f"Retrieval at scale — {ws.label()}", fontweight="bold")
ws.save_figure(fig, "07_scaling")
plt.show()

# %% [markdown]
# ## What scales, and where
#
# * **Memory** is what hashing buys first: 8 bytes an item at 64 bits against 256 bytes for a float
#   vector of the same dimension — a billion codes fit in 8 GB of RAM.
# * **Exact search** (`flat`) is linear in the database, but its constant is tiny: one XOR and one popcount
#   per 64 bits. Up to tens of millions of items it answers in milliseconds on one machine, and its ranking
#   is exactly the one `mh.metrics` scores (ties by position).
# * **Hash tables** (`hash`, `multihash`) answer "everything within radius r" in time that does not grow
#   with the database, but only for small r; top-100 of an unstructured database needs radii they do not
#   probe, which the recall column shows.
# * **IVF and HNSW** trade a little recall for latency that grows slowly with the database; HNSW builds
#   slowly, IVF needs a k-means training pass.
# * **Beyond one machine**: FAISS shards an index over machines (`IndexBinaryShards`, or one index per
#   machine with results merged by distance); `faiss-gpu` runs binary flat and IVF search on GPUs. Codes
#   from many machines go into one index with `CodeIndex.build` on their concatenation, ids kept.

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check. The experiment
# changes a setting and runs it at smoke scale: write your prediction down before you run it.
#
# 1. **A radius-1 lookup.** Put a query's exact copy and its 64 one-bit neighbours into 10,000 random 64-bit
#    codes. Predict how many items `CodeIndex.within_radius(query, radius=1)` returns, and their distances.
# 2. **Memory of a million codes.** Predict the bytes of a million packed 64-bit codes, and compare with
#    64-dimensional float32 vectors.
# 3. **Experiment: how full is a radius-2 ball?** Index 100,000 random codes of 16 bits, then of 64 bits,
#    and look up 20 random queries within radius 2. Predict the number of hits per query for each length,
#    then measure it.
#
# Worked solutions: [`solutions/07_solutions.py`](solutions/07_solutions.py) (run by the test suite).

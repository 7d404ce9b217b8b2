# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Training MambaHash on CIFAR-10
#
# **What this shows.** MambaHash trained with the DPSH objective (Eq. 17–18: pairwise likelihood against a
# memory bank of training codes, plus η‖h − sign(h)‖²) on the paper's CIFAR-10 protocol, for every bit
# length of the profile: loss curves, mAP per epoch, the codes saved to disk, and retrieval examples.
#
# **Profiles.** `smoke` (CPU, minutes): 48 bits, 32 px, the protocol's 5,000 training images with
# class-balanced query and database subsets (200 / 2,000), 5 epochs, a reduced network (one block per stage,
# half the widths), no pretrained weights — it shows the pipeline learns, not the paper's accuracy. `gpu`:
# the full split (5,000 / 1,000 / 54,000) at 224 px, all four bit lengths. The paper also starts from
# ImageNet GroupMamba-S weights, which are not available here.
#
# **What it writes.** `results/runs/<profile>/cifar10-mambahash-<K>bits-<profile>/` (config, manifest,
# losses, history, codes, checkpoint), `results/tables/03_training.{csv,md}`,
# `figures/03_training_curves.{png,pdf}`, `figures/03_retrieval_examples.{png,pdf}`, and in the smoke
# profile `figures/03_optimiser_sweep.{png,pdf}`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."
BITS = None

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
import pandas as pd
import torch

from mh.codes import load_code_sets, retrieve
from mh.engine import evaluate_model
from mh.metrics import query_average_precisions, showcase_queries
from mh.registry import build_hashing_model
from mh.repro.run_cache import ensure_run
from mh.repro.tuning import read_tuning, tuning_record
from mh.repro.workspace import open_workspace
from mh.splits import CIFAR10_CLASSES

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
profile = ws.profile
bit_lengths = list(BITS or profile.bits)
print(ws.label(), "| bits:", bit_lengths)
print(profile.note)

# %% [markdown]
# ## 1. Data: the paper's split, drawn once
#
# All 60,000 images are pooled; per class 100 go to the query set, 500 to training, the rest to the
# database, with the released code's algorithm and seed 2025. The split is written to
# `results/splits/cifar10-seed2025.npz` and reused by every run. Small profiles take seeded,
# class-balanced subsets of each set.

# %%
data = ws.data()
pd.Series(data.record["sizes"], name="images").to_frame().assign(source=data.record["source"])

# %% [markdown]
# ## 2. Before training: what does an untrained network score?
#
# A random network's codes already carry some image similarity, so "better than chance" is the wrong
# yardstick. We measure the same initialisation that training starts from (seed 2025) at 48 bits.

# %%
torch.manual_seed(SEED)
untrained = build_hashing_model("mambahash", 48, image_size=profile.image_size, size=profile.model_size).to(ws.device)
untrained_map = evaluate_model(untrained, data, profile, ws.device)[0]["map"]
print(f"untrained MambaHash-48 mAP = {untrained_map:.4f}")
del untrained

# %% [markdown]
# ## 3. The optimiser: the paper's, or one chosen on held-out training images
#
# The paper trains with RMSprop at 2e-5 and batch 32 (§4.1) — a fine-tuning recipe for ImageNet-pretrained
# GroupMamba weights. The smoke profile starts from random weights, with a reduced network, so it needs its
# own setting. `python -m mh.repro.tuning --profile smoke` chose it: it holds out 200 of the profile's
# training images as validation queries and 400 more as their database (neither is trained on, so the
# score is retrieval of unseen images, not memory), trains on the other 4,400 every candidate —
# RMSprop rate × batch size (16, 32) × image pipeline (the paper's resize, random crop and flip, or the
# released code's plain resize) — and keeps the best validation mAP after the last epoch. The query set is
# never used to choose. The curves below are that sweep's, read from `results/tuning/` (with its manifest),
# not re-run here. At three epochs from scratch more steps win (batch 16 beats 32 at every rate), and at
# 3e-4 RMSprop collapses: its loss grows and every image gets the same code, so validation mAP falls below
# the untrained network's. With 5,000 training images the paper's crop-and-flip pipeline edges out the
# plain resize (on 2,000 images it was the other way round). How long to train is asked afterwards, of the
# chosen setting alone (`--epochs 6`, the right-hand panel): validation mAP keeps rising to epoch 5 and then
# stops, so the smoke profile trains 5 epochs. The paper profile keeps the paper's recipe (RMSprop 2e-5, a
# fine-tuning rate for ImageNet-pretrained weights); the gpu profile trains from random weights with the
# from-scratch recipe of the next figure.

# %%
print(f"this profile: {profile.optimizer or 'the model’s (RMSprop)'} at learning rate {profile.learning_rate:g}")
if profile.name == "smoke":
    sweep, choice = read_tuning("smoke"), tuning_record("smoke")
    epochs_study, epochs_choice = read_tuning("smoke", study="epochs"), tuning_record("smoke", study="epochs")
    print(f"chosen by the sweep: {choice['chosen_optimizer']} at {choice['chosen_learning_rate']:g}, batch "
          f"{choice['chosen_batch_size']}, {choice['chosen_transform_style']} images "
          f"({choice['criterion']}; {choice['validation_size']} validation queries); "
          f"{epochs_choice['chosen_epochs']} epochs ({epochs_choice['epochs_criterion']}); "
          f"the profile trains {profile.epochs}")
    styles = list(dict.fromkeys(sweep["transform_style"]))
    fig, axes = plt.subplots(1, len(styles) + 1, figsize=(5 * len(styles) + 5, 4), sharey=True, squeeze=False)
    for ax, style in zip(axes[0], styles):
        for (optimizer, rate, batch), curve in sweep[sweep["transform_style"] == style].groupby(
                ["optimizer", "lr", "batch_size"]):
            ax.plot(curve["epoch"], curve["validation_map"], marker="o", ls="-" if batch == 16 else "--",
                    label=f"{optimizer} {rate:g}, batch {batch}")
        ax.set(xlabel="epoch", title=f"images: {style}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    epochs_axis = axes[0][-1]
    epochs_axis.plot(epochs_study["epoch"], epochs_study["validation_map"], marker="o", color="black")
    epochs_axis.axvline(epochs_choice["chosen_epochs"], color="tab:green", ls=":", label="chosen epochs")
    epochs_axis.set(xlabel="epoch", title="the chosen setting, trained longer")
    epochs_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    epochs_axis.legend(fontsize=8)
    axes[0][0].set_ylabel("validation mAP")
    axes[0][-2].legend(fontsize=8)
    fig.suptitle("Optimiser sweep on held-out training images", fontweight="bold")
    ws.save_figure(fig, "03_optimiser_sweep")
    plt.show()

# %% [markdown]
# **A recipe for the full-size network from random weights.** The smoke recipe (RMSprop 2e-4, no warm-up)
# makes the *full-size* MambaHash collapse: its loss climbs within the first epoch and every image gets the
# same code, whose mAP is the chance level of the validation database. The study below (`python -m
# mh.repro.tuning --profile scratch_study`: full-size network, CIFAR's 32 px, 2,000 training images of which
# 600 are held out as validation queries and database, 3 epochs, on a CPU) tried two rates with and without a
# linear warm-up of the rate over the first 100 steps plus clipping the gradient norm to 1; the gpu profile
# takes the setting with the best last-epoch validation mAP. It is a stability check at 32 px, not a tuned
# recipe for 224 px: a GPU session should confirm it there.

# %%
scratch, scratch_choice = read_tuning("scratch_study"), tuning_record("scratch_study")
print(f"gpu profile from scratch: {scratch_choice['chosen_optimizer']} at {scratch_choice['chosen_learning_rate']:g}, "
      f"batch {scratch_choice['chosen_batch_size']}, warm-up {scratch_choice['chosen_warmup_steps']} steps, "
      f"gradient norm clipped to {scratch_choice['chosen_clip_grad_norm']:g} ({scratch_choice['criterion']})")
fig, (loss_axis, map_axis) = plt.subplots(1, 2, figsize=(11, 4))
for (rate, warmup, clip), curve in scratch.groupby(["lr", "warmup_steps", "clip_grad_norm"]):
    label = f"rate {rate:g}" + (f", warm-up {warmup}, clip {clip:g}" if warmup or clip else ", no warm-up or clip")
    style = dict(marker="o", ls="-" if warmup else "--")
    loss_axis.plot(curve["epoch"], curve["loss"], label=label, **style)
    map_axis.plot(curve["epoch"], curve["validation_map"], label=label, **style)
loss_axis.axhline(np.log(2), color="grey", ls=":", label="ln 2: every pair predicted at 0.5")
loss_axis.set(xlabel="epoch", ylabel="training loss (log scale)", yscale="log", title="loss")
map_axis.axhline(0.1, color="grey", ls=":", label="chance (10 balanced classes)")
map_axis.set(xlabel="epoch", ylabel="validation mAP", title="validation mAP")
for axis in (loss_axis, map_axis):
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
map_axis.legend(fontsize=8)
fig.suptitle("Full-size MambaHash from random weights, 32 px: which recipe keeps it stable", fontweight="bold")
ws.save_figure(fig, "03_scratch_recipe")
plt.show()

# %% [markdown]
# ## 4. Train every bit length
#
# The profile's batch size, η = 0.01, the optimiser above (weight decay 1e-7), gradients zeroed every step
# (the released code never zeroes them — see `mh.train`), last-epoch numbers reported.

# %%
results = {}
for bits in bit_lengths:
    results[bits] = ensure_run(ws.train_config("mambahash", bits), data)

rows = []
for bits, record in results.items():
    rows.append({"bits": bits, "mAP (last epoch)": record.metrics["map"],
                 "P@H≤2": record.evaluation["precision_within_hamming_2"], "epochs": record.metrics["epochs"],
                 "× untrained": record.metrics["map"] / untrained_map, "profile": record.metrics["profile"],
                 "run": record.name})
summary = pd.DataFrame(rows)
summary.loc[len(summary)] = {"bits": 48, "mAP (last epoch)": untrained_map, "P@H≤2": np.nan, "epochs": 0,
                             "× untrained": 1.0, "profile": profile.describe(), "run": "untrained (same seed)"}
ws.save_table(summary, "03_training", f"MambaHash on CIFAR-10, mAP over the whole database ({ws.label()}).")
summary

# %% [markdown]
# ## 5. Loss and mAP curves

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for bits, record in results.items():
    losses = record.losses
    steps = np.arange(len(losses))
    axes[0].plot(steps, losses["loss"], alpha=0.25)
    axes[0].plot(steps, losses["loss"].rolling(10, min_periods=1).mean(), label=f"{bits} bits (10-step mean)",
                 color=axes[0].lines[-1].get_color())
    history = record.history.dropna(subset=["map"])
    axes[1].plot(history["epoch"], history["map"], marker="o", label=f"{bits} bits")
axes[1].axhline(untrained_map, color="0.5", ls="--", label="untrained, 48 bits")
axes[0].set_xlabel("training step"); axes[0].set_ylabel("DPSH loss (Eq. 18)"); axes[0].legend()
axes[0].set_title("Training loss")
axes[1].set_xlabel("epoch"); axes[1].set_ylabel("mAP (whole database)"); axes[1].legend()
axes[1].set_title("Query-set mAP after each epoch")
axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
fig.suptitle(f"MambaHash on CIFAR-10 — {ws.label()}", fontweight="bold")
ws.save_figure(fig, "03_training_curves")
plt.show()

# %% [markdown]
# ## 6. Retrieval examples
#
# Codes are stored packed (`np.packbits`) in `codes.npz`; `mh.retrieve` ranks the database by Hamming
# distance (ties by database index). The five queries are chosen by a stated rule (`mh.metrics.showcase_queries`):
# those at the 100th, 75th, 50th, 25th and 0th percentile of the per-query AP — best to worst, each labelled.
# Green: same class as the query; red: different class.

# %%
shown_bits = 48 if 48 in results else bit_lengths[-1]
sets = load_code_sets(results[shown_bits].run_dir / "codes.npz")
query_labels, db_labels = sets["query"].labels.argmax(1), sets["database"].labels.argmax(1)
aps = query_average_precisions(sets["query"].codes, sets["database"].codes, sets["query"].labels,
                               sets["database"].labels)
percentiles = [100, 75, 50, 25, 0]
examples = showcase_queries(aps, quantiles=[p / 100 for p in percentiles])
fig, axes = plt.subplots(len(examples), 11, figsize=(15, 1.6 * len(examples)))
for row, query_position, percentile in zip(axes, examples, percentiles):
    indices, distances = retrieve(sets["query"].packed[query_position], sets["database"], k=10)
    row[0].imshow(data.query.image(query_position))
    row[0].set_title(f"AP percentile {percentile}: {aps[query_position]:.2f}\n"
                     f"{CIFAR10_CLASSES[query_labels[query_position]]}", fontsize=7)
    for ax, index, distance in zip(row[1:], indices, distances):
        ax.imshow(data.database.image(index))
        correct = db_labels[index] == query_labels[query_position]
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:green" if correct else "tab:red"); spine.set_linewidth(3)
        ax.set_title(f"d={distance}", fontsize=8, color="tab:green" if correct else "tab:red")
    for ax in row:
        ax.set_xticks([]); ax.set_yticks([])
fig.suptitle(f"Top-10 by Hamming distance, {shown_bits} bits — {ws.label()}", fontweight="bold")
ws.save_figure(fig, "03_retrieval_examples")
plt.show()

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check.
#
# 1. **Collapsed codes.** A too-high learning rate makes every image's code the same. Predict the mAP of
#    such codes on a database of ten balanced classes (ties are broken by database position), and compute it
#    with `mh.metrics.mean_average_precision`.
# 2. **One step of the memory bank.** Predict which rows of `DPSHLoss.bank_codes` change after
#    `update_bank(codes, labels, positions)` for a batch of three, and check.
#
# Worked solutions: [`solutions/03_solutions.py`](solutions/03_solutions.py) (run by the test suite).

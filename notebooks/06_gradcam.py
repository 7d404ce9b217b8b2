# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Grad-CAM: where each backbone looks when it hashes
#
# **What this shows.** Grad-CAM maps (pytorch-grad-cam) for MambaHash, ResNet50, ViT-L/32 and HybridHash on
# the same CIFAR-10 query images, in a grid like the paper README's. A hashing network has no class logit,
# so the target is the similarity h·c of the image's code h to its class-centre code c (the sign of the
# class's mean code on a small reference set): the map shows what pulls the code towards its class.
# Each backbone names its target layer and the reshape from its token layout to a (B, C, h, w) map in
# `mh.repro.gradcam.gradcam_target`.
#
# **Which weights.** Maps are computed at 224×224. When this profile trained 48-bit models at 224 px
# (gpu, paper), their checkpoints are loaded. Otherwise (smoke: 32 px) the networks are freshly initialised
# with the seed, in the profile's network size (smoke: the reduced networks of `mh.registry`, fewer blocks)
# — the figure then shows the mechanics of Grad-CAM on each architecture, **not** what a trained network
# attends to; its title says so.
#
# **What it writes.** `figures/06_gradcam.{png,pdf}`, `results/tables/06_gradcam_layers.{csv,md}`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."
IMAGE_SIZE = 224
BITS = 48
IMAGES_PER_ROW = 4
REFERENCE_PER_CLASS = 5

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam.utils.image import show_cam_on_image

from mh.data import IMAGENET_MEAN, IMAGENET_STD, build_transform
from mh.registry import COMPARISON_BACKBONES, build_hashing_model
from mh.repro.gradcam import class_centres, gradcam_maps, gradcam_target
from mh.repro.tables import MODEL_LABELS
from mh.repro.workspace import open_workspace
from mh.rundir import RunDirectory
from mh.splits import CIFAR10_CLASSES, stratified_subset

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
profile = ws.profile
compare = ws.comparison_profile  # the four backbones are compared where notebook 04 trained them

# %% [markdown]
# ## 1. The images: query images to explain, and a class-balanced reference set for the centre codes

# %%
data = ws.data(profile, image_size=IMAGE_SIZE, transform_style="paper")
transform = build_transform(False, IMAGE_SIZE)
query_labels, train_labels = data.query.class_indices(), data.train.class_indices()
shown = np.random.default_rng(SEED).choice(len(data.query), size=IMAGES_PER_ROW, replace=False)
reference = stratified_subset(np.arange(len(data.train)), train_labels, 10 * REFERENCE_PER_CLASS, SEED)
images = torch.stack([transform(data.query.image(i)) for i in shown])
labels = torch.as_tensor(query_labels[shown])
reference_images = torch.stack([transform(data.train.image(i)) for i in reference])
reference_labels = torch.as_tensor(train_labels[reference])
print("explaining:", [CIFAR10_CLASSES[label] for label in labels])

# %% [markdown]
# ## 2. Maps for every backbone

# %%
maps, layers, weights_used = {}, [], {}
for name in COMPARISON_BACKBONES:
    torch.manual_seed(SEED)
    model = build_hashing_model(name, BITS, image_size=IMAGE_SIZE, size=compare.model_size)
    checkpoint = RunDirectory(ws.train_config(name, BITS, compare).run_path()).checkpoint_path
    if compare.image_size == IMAGE_SIZE and checkpoint.exists():
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"])
        weights_used[name] = f"trained ({compare.name})"
    else:
        weights_used[name] = "untrained" + (", reduced" if compare.model_size == "reduced" else "")
    centres = class_centres(model, reference_images, reference_labels, 10)
    maps[name] = gradcam_maps(model, images, labels, centres)
    target = gradcam_target(model)
    layers.append({"backbone": MODEL_LABELS[name], "target layer": target.description,
                   "reshape": "tokens → (B, C, h, w)" if target.reshape else "none (already a map)",
                   "weights": weights_used[name]})
    del model
layer_table = pd.DataFrame(layers)
ws.save_table(layer_table, "06_gradcam_layers", f"Grad-CAM target layers and weights used ({ws.label()}).")
layer_table

# %%
mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
pictures = (images * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
fig, axes = plt.subplots(IMAGES_PER_ROW, 1 + len(COMPARISON_BACKBONES), figsize=(3 * (1 + len(COMPARISON_BACKBONES)), 3 * IMAGES_PER_ROW))
for row, picture in enumerate(pictures):
    axes[row, 0].imshow(picture)
    axes[row, 0].set_ylabel(CIFAR10_CLASSES[int(labels[row])], fontsize=11)
    for column, name in enumerate(COMPARISON_BACKBONES, start=1):
        axes[row, column].imshow(show_cam_on_image(picture.astype(np.float32), maps[name][row], use_rgb=True))
for column, title in enumerate(["image"] + [f"{MODEL_LABELS[n]}\n({weights_used[n]})" for n in COMPARISON_BACKBONES]):
    axes[0, column].set_title(title, fontsize=10)
for ax in axes.ravel():
    ax.set_xticks([]); ax.set_yticks([])
state = "trained weights" if all(v.startswith("trained") for v in weights_used.values()) else "untrained networks where marked: mechanics only"
fig.suptitle(f"Grad-CAM, target = similarity to class-centre code, {BITS} bits, {IMAGE_SIZE} px — {state}\n"
             f"{ws.label()}", fontweight="bold")
ws.save_figure(fig, "06_gradcam")
plt.show()

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check.
#
# 1. **A network that ignores its input.** If every image gets the same code, what are the class centres
#    (`mh.repro.gradcam.class_centres`)? What does that mean for the Grad-CAM target?
# 2. **How coarse is a ViT-L/32 map?** Predict the shape of the target layer's map at 224 px after the
#    reshape that `gradcam_target` gives, and check it with a forward hook.
#
# Worked solutions: [`solutions/06_solutions.py`](solutions/06_solutions.py) (run by the test suite).

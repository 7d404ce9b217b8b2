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
# **Which weights.** The networks notebook 04 trained under this profile (the first training seed), at the
# profile's image size. Beside each trained map, the same network untrained (its initialisation) as a
# labelled contrast: what the architecture alone highlights. At CIFAR's 32 px the last feature maps are 1×1,
# so the target is the last map with at least 4×4 positions (`mh.repro.gradcam.gradcam_target`: stage 2 of
# MambaHash, layer 2 of ResNet50); ViT-L/32 sees a 32 px image as a single patch and has no map at all, and
# the panel says so.
#
# **What it writes.** `figures/<profile>/06_gradcam.{png,pdf}`, `results/tables/<profile>/06_gradcam_layers.{csv,md}`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."
IMAGE_SIZE = None  # None: the size the profile's networks were trained at
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
from mh.registry import COMPARISON_BACKBONES
from mh.repro.gradcam import class_centres, gradcam_maps, gradcam_target, network_to_explain
from mh.repro.tables import MODEL_LABELS
from mh.repro.workspace import open_workspace
from mh.splits import CIFAR10_CLASSES, stratified_subset

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
profile = ws.profile
compare = ws.comparison_profile  # the four backbones are compared where notebook 04 trained them
image_size = IMAGE_SIZE or compare.image_size

# %% [markdown]
# ## 1. The images: query images to explain, and a class-balanced reference set for the centre codes

# %%
data = ws.data(profile, image_size=image_size, transform_style="paper")
transform = build_transform(False, image_size)
query_labels, train_labels = data.query.class_indices(), data.train.class_indices()
shown = np.random.default_rng(SEED).choice(len(data.query), size=IMAGES_PER_ROW, replace=False)
reference = stratified_subset(np.arange(len(data.train)), train_labels, 10 * REFERENCE_PER_CLASS, SEED)
images = torch.stack([transform(data.query.image(i)) for i in shown])
labels = torch.as_tensor(query_labels[shown])
reference_images = torch.stack([transform(data.train.image(i)) for i in reference])
reference_labels = torch.as_tensor(train_labels[reference])
print("explaining (drawn at random with the seed):", [CIFAR10_CLASSES[label] for label in labels])

# %% [markdown]
# ## 2. Maps for every backbone: trained, and untrained as a contrast

# %%
maps, layers = {}, []
for name in COMPARISON_BACKBONES:
    for state in ("trained", "untrained"):
        model = network_to_explain(ws.train_config(name, BITS, compare), state == "trained", image_size)
        target = gradcam_target(model, image_size) if model is not None else None
        if target is not None:
            centres = class_centres(model, reference_images, reference_labels, 10)
            maps[name, state] = gradcam_maps(model, images, labels, centres)
        reason = ("not trained at this size under this profile" if model is None
                  else f"no map of at least 4×4 positions at {image_size} px" if target is None else "")
        layers.append({"backbone": MODEL_LABELS[name], "weights": state,
                       "target layer": target.description if target else reason,
                       "reshape": "" if target is None else "tokens → (B, C, h, w)" if target.reshape
                       else "none (already a map)"})
layer_table = pd.DataFrame(layers)
ws.save_table(layer_table, "06_gradcam_layers",
              f"Grad-CAM target layers at {image_size} px, trained and untrained weights ({ws.label(compare)}).")
layer_table

# %%
mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
pictures = (images * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
mapped = [name for name in COMPARISON_BACKBONES if any((name, state) in maps for state in ("trained", "untrained"))]
unmapped = [MODEL_LABELS[name] for name in COMPARISON_BACKBONES if name not in mapped]
columns = [("image", None)] + [(name, state) for name in mapped for state in ("trained", "untrained")]
fig, axes = plt.subplots(IMAGES_PER_ROW, len(columns), figsize=(1.9 * len(columns), 2.0 * IMAGES_PER_ROW))
for row, picture in enumerate(pictures):
    for column, (name, state) in enumerate(columns):
        ax = axes[row, column]
        if name == "image":
            ax.imshow(picture)
            ax.set_ylabel(CIFAR10_CLASSES[int(labels[row])], fontsize=10)
        elif (name, state) in maps:
            ax.imshow(show_cam_on_image(picture.astype(np.float32), maps[name, state][row], use_rgb=True))
        else:
            ax.text(0.5, 0.5, "no map\n(see table)", ha="center", va="center", fontsize=8, color="0.4",
                    transform=ax.transAxes)
        ax.set_xticks([]); ax.set_yticks([])
for column, (name, state) in enumerate(columns):
    axes[0, column].set_title("image" if name == "image" else f"{MODEL_LABELS[name]}\n{state}",
                              fontsize=9, color="black" if state != "untrained" else "0.45")
missing = f"\nno map of at least 4×4 positions at this size: {', '.join(unmapped)} (see the table)" if unmapped else ""
title = (f"Grad-CAM, target = similarity to the class-centre code, {BITS} bits, {image_size} px\ntrained "
         f"networks, untrained ones (grey titles) as a contrast{missing}\n{ws.label(compare)}")
fig.suptitle(title, fontweight="bold", fontsize=9)
fig.tight_layout(rect=(0, 0, 1, 1 - 0.17 * (title.count("\n") + 1) / fig.get_figheight()))  # title above the headers
ws.save_figure(fig, "06_gradcam")
plt.show()

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check. The experiment
# changes a setting and runs it at smoke scale: write your prediction down before you run it.
#
# 1. **A network that ignores its input.** If every image gets the same code, what are the class centres
#    (`mh.repro.gradcam.class_centres`)? What does that mean for the Grad-CAM target?
# 2. **How coarse is a ViT-L/32 map?** Predict the shape of the target layer's map at 224 px after the
#    reshape that `gradcam_target` gives, and check it with a forward hook.
# 3. **Experiment: which layer at which size?** Ask `gradcam_target` for ResNet-50's layer at 32, 64, 128
#    and 224 px. Predict the stage it picks and the side of its map at each size, then measure the map.
#
# Worked solutions: [`solutions/06_solutions.py`](solutions/06_solutions.py) (run by the test suite).

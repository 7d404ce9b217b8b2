# %% [markdown]
# # Solutions to the exercises of notebook 06 (Grad-CAM)

# %%
import torch
from torch import nn

from mh.registry import build_hashing_model
from mh.repro.gradcam import class_centres, gradcam_maps, gradcam_target

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1 — class centres of a network that ignores its input
#
# **Prediction.** If a network gives every image the same code h, each class's mean code is h and its
# centre is sign(h): all centres are equal, so the Grad-CAM target cannot tell the classes apart.

# %%
class ConstantCodes(nn.Module):
    def __init__(self, code: torch.Tensor):
        super().__init__()
        self.code = nn.Parameter(code)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.code).expand(images.shape[0], -1) + 0 * images.mean()


code = torch.randn(16)
centres = class_centres(ConstantCodes(code), torch.randn(20, 3, 32, 32), torch.arange(10).repeat(2), 10)
print("distinct centres:", len(torch.unique(centres, dim=0)))
assert torch.equal(centres, torch.sign(code).expand(10, -1))

# %% [markdown]
# ## Exercise 2 — how coarse is a ViT-L/32 map?
#
# **Prediction.** Patches of 32 pixels make a 224-pixel image a 7 × 7 grid of tokens (plus CLS), so the
# target layer's map, after the reshape that drops CLS, is (1, 1024, 7, 7): Grad-CAM has 49 cells to
# weigh, which pytorch-grad-cam then interpolates up to the 224 × 224 heat map.

# %%
vit = build_hashing_model("vit_l_32", 16, image_size=224, size="reduced")
images, labels = torch.randn(1, 3, 224, 224), torch.tensor([0])
target, captured = gradcam_target(vit, 224), []
hook = target.layer.register_forward_hook(lambda module, inputs, output: captured.append(target.reshape(output)))
maps = gradcam_maps(vit, images, labels, class_centres(vit, images, labels, 1))
hook.remove()
print("target-layer map:", tuple(captured[0].shape), "| heat map:", maps.shape)
assert tuple(captured[0].shape) == (1, 1024, 7, 7) and maps.shape == (1, 224, 224)

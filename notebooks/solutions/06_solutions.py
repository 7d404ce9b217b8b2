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

# %% [markdown]
# ## Exercise 3 — experiment: which layer does Grad-CAM look at, by image size?
#
# **Setting changed.** The image size. Ask `gradcam_target` for ResNet-50's layer at 32, 64, 128 and 224 px
# and measure the map that layer gives.
#
# **Prediction.** ResNet-50's stages halve the side at strides 8, 16 and 32 (layer2, layer3, layer4), and the
# rule takes the last map with at least 4 × 4 positions: at 224 px layer4 (7 × 7); at 128 px layer4 (4 × 4);
# at 64 px layer4 is 2 × 2, so layer3 (4 × 4); at CIFAR's 32 px layer2 (4 × 4). Small images are explained
# by earlier, less semantic layers — one reason the 32 px maps of notebook 06 are coarse.

# %%
resnet = build_hashing_model("resnet50", 16, image_size=224, size="reduced").eval()
chosen = {}
for side in (32, 64, 128, 224):
    target, shapes = gradcam_target(resnet, side), []
    hook = target.layer.register_forward_hook(lambda module, inputs, output, seen=shapes: seen.append(output.shape))
    with torch.no_grad():
        resnet(torch.zeros(1, 3, side, side))
    hook.remove()
    chosen[side] = (target.description, tuple(shapes[0][-2:]))
    print(f"{side:>3} px: {target.description}, map {chosen[side][1]}")
assert chosen == {32: ("layer2[-1]", (4, 4)), 64: ("layer3[-1]", (4, 4)),
                  128: ("layer4[-1]", (4, 4)), 224: ("layer4[-1]", (7, 7))}

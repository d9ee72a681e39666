"""One training step of the CV backbone in PyTorch (batch 64 x 3 x 32 x 32, AdamW), full
(every conv + fc, BatchNorm frozen in eval mode) and LoRA (PEFT with the config's r, alpha
and target modules, fc trained), timed as the
`cv_step` criterion bench times ours. The torchvision-layout ResNet-18 at stem width
WIDTH is built here (torchvision is not needed) and loads our backbone's safetensors
(f16, torchvision keys). Prints one line of seconds per step.

Usage: python torch_resnet_step.py BACKBONE.safetensors WIDTH ARCH R ALPHA TARGETS
(needs torch, peft, safetensors; ARCH must be resnet18, the committed backbone; TARGETS is
PEFT's target_modules: one regex, or names joined by commas)
"""
import sys

import torch
from safetensors.torch import load_file
from torch import nn
from torch_timing import time_steps


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, mult in enumerate([1, 2, 4, 8]):
            cout = width * mult
            blocks = [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(x.mean((2, 3)))


path, width, arch, r, alpha, targets = sys.argv[1:7]
width, r, alpha = int(width), int(r), float(alpha)
if arch != "resnet18":
    sys.exit(f"torch_resnet_step.py builds resnet18 only, the config asks for {arch}")
targets = targets.split(",") if "," in targets else targets
# Read once; each model copies it (f16 on disk, f32 here).
state = {k: v.float() for k, v in load_file(path).items() if not k.startswith("fc.")}
torch.manual_seed(0)
x = torch.randn(64, 3, 32, 32)
y = torch.arange(64) % 10


def model():
    m = ResNet18(width, 10)
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("fc.") for k in missing), (missing, unexpected)
    return m


def frozen_bn(m):
    """Train mode for dropout-free layers, but BatchNorm in eval mode with fixed affine."""
    m.train()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()
            mod.weight.requires_grad_(False)
            mod.bias.requires_grad_(False)
    return m


def step_timer(m, params, lr):
    return time_steps(lambda: nn.functional.cross_entropy(m(x), y), params, lr, 0.0)


full = frozen_bn(model())
t_full = step_timer(full, [p for p in full.parameters() if p.requires_grad], 1e-4)
result = f"torch {torch.__version__}, {torch.get_num_threads()} threads: full {t_full:.3f} s/step"
try:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, modules_to_save=["fc"])
    lora = frozen_bn(get_peft_model(model(), cfg))
    t_lora = step_timer(lora, [p for p in lora.parameters() if p.requires_grad], 1e-3)
    result += f", lora {t_lora:.3f} s/step"
except ImportError:
    result += ", lora not timed (peft missing)"
print(result)

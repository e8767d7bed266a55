"""Variants of zoo networks that lecture slides count instead of the zoo's own.

A slide's figure often belongs to a neighbouring version of a network: d2l's
AlexNet for 224x224 Fashion-MNIST, GoogLeNet as the paper's Table 1 draws it
(torchvision's keeps BN and a 3x3 kernel where the paper has 5x5). Each is
built here from its source so the lab can say which variant a figure fits;
the zoo itself keeps the networks as their weights define them.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import GoogLeNet


def d2l_alexnet(in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """AlexNet as d2l.ai defines it (Dive into Deep Learning, sec. 8.1): one
    input channel, CONV1 11x11 stride 4 with padding 1 on 224x224, so the last
    pool gives 256x5x5 = 6,400 features (the paper's 227x227 input gives 6x6)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes),
    )


def googlenet_paper() -> GoogLeNet:
    """GoogLeNet with the paper's 5x5 kernels in each inception module's third
    branch (Szegedy et al. 2015, Table 1); torchvision's model, which these
    weights-free counts start from, uses 3x3 there (kept for its weights'
    sake). Batch norm stays: count weights alone to compare with Table 1."""
    model = GoogLeNet(num_classes=1000, aux_logits=False, init_weights=False)
    for module in model.modules():
        branch = getattr(module, "branch3", None)
        if branch is not None:
            conv = branch[1].conv
            branch[1].conv = nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=5, padding=2, bias=False)
    return model

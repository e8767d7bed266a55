"""The classic networks, defined from their papers, layers in the order the papers draw them.

Architecture only: no weights, no URLs, no accuracy (that lives in the catalog).
"""

from __future__ import annotations

from torch import nn


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): CONV-POOL-CONV-POOL-FC-FC-output on 32x32 greyscale.

    Simplified as the course draws it: full C3 connectivity and parameter-free
    2x2 average subsampling, tanh throughout; 61,706 parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),    # C1: 32 -> 28
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # S2: 28 -> 14
            nn.Conv2d(6, 16, kernel_size=5),   # C3: 14 -> 10
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # S4: 10 -> 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),        # C5 / FC
            nn.Tanh(),
            nn.Linear(120, 84),                # F6
            nn.Tanh(),
            nn.Linear(84, num_classes),        # output
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class AlexNetPaper(nn.Module):
    """AlexNet as published (Krizhevsky et al. 2012): 96 CONV1 filters, LRN,
    two-GPU grouped CONV2/4/5, 227x227 input; 60,965,224 parameters.
    ``groups=1`` is the same network on one GPU (every filter sees every
    channel), the variant many slides count: 62,378,344 parameters."""

    def __init__(self, num_classes: int = 1000, groups: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),               # CONV1: 227 -> 55
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 55 -> 27
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups),   # CONV2
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 27 -> 13
            nn.Conv2d(256, 384, kernel_size=3, padding=1),            # CONV3 (across GPUs)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups),  # CONV4
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups),  # CONV5
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 13 -> 6
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),  # FC6
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),         # FC7
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),  # FC8
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ZFNet(nn.Module):
    """ZFNet (Zeiler & Fergus 2013): AlexNet with a 7x7 stride-2 CONV1 and a
    stride-2 CONV2, on one GPU (no groups). ``widths`` sets CONV3-5; the
    paper's larger variant used (512, 1024, 512). The pools round up
    (ceil_mode) to give the paper's 55 and 13."""

    def __init__(self, widths: tuple[int, int, int] = (384, 384, 256), num_classes: int = 1000) -> None:
        super().__init__()
        c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),    # 224 -> 110
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 110 -> 55
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),             # 55 -> 26
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 26 -> 13
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(256, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                   # 13 -> 6
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(c5 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """A conv followed by two 1x1 convs: a small MLP slid over every position."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(inplace=True),
    )


class NiN(nn.Module):
    """Network in Network (Lin et al. 2013), the ImageNet-sized version of d2l:
    four NiN blocks, the last with one channel per class, then global average
    pooling instead of fully connected layers."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _nin_block(3, 96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            _nin_block(96, 256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            _nin_block(256, 384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Dropout(0.5),
            _nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x):
        return self.flatten(self.pool(self.features(x)))

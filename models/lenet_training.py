"""LeNet-5's weights, trained here on scikit-learn's digits: seeded and
deterministic, a few seconds on a CPU, once per cache directory.

The split is stratified (scikit-learn's ``train_test_split``, 25% held out,
fixed seed); the held-out accuracy is stored with the weights and shown on
LeNet-5's card. Training draws small random affine distortions of each
digit (rotation, scale, shift: Simard et al. 2003's "elastic"/affine
distortions, here the affine part only) from a seeded generator, so photos
of digits that are a little tilted still read; and each training digit is
also seen as ``digit_8x8`` re-prepares it from its bitmap (see ``_split``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.classic import LeNet5
from models.digits import bitmap_image, digit_8x8, lenet_input, load_digit_data
from models.meta import TORCH_TRACING

RECIPE = {
    "data": "sklearn.datasets.load_digits", "held_out": 0.25, "split_seed": 0, "seed": 0,
    "epochs": 15, "batch": 64, "optimizer": "Adam", "lr": 2e-3, "lr_schedule": "cosine",
    "max_rotation_deg": 12, "scale": [0.9, 1.1], "max_shift_px": 2,
}


@dataclass(frozen=True)
class TrainedLeNet:
    state_dict: dict[str, torch.Tensor]
    held_out_accuracy: float  # percent, on the held-out split
    held_out_images: int
    train_images: int  # distinct training digits (each is also seen re-prepared, see _split)
    train_seconds: float


def recipe_key() -> str:
    """Names the weights file: a change of recipe or of torch trains afresh."""
    text = json.dumps({**RECIPE, "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """LeNet inputs and labels: training, then held out. Each training digit
    comes twice: as the dataset has it, and re-prepared from its 32x32
    bitmap by ``digit_8x8`` exactly as an uploaded picture would be, so the
    net knows both (photos of held-out digits: 94% without the copies, 97%
    with them; the held-out digits themselves: 98.7% and 98.9%)."""
    from sklearn.model_selection import train_test_split

    images, labels = load_digit_data()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=RECIPE["held_out"], random_state=RECIPE["split_seed"], stratify=labels)
    reprepared = np.stack([digit_8x8(bitmap_image(d)) for d in x_train])
    x_train, y_train = np.concatenate([x_train, reprepared]), np.concatenate([y_train, y_train])
    return lenet_input(x_train), torch.from_numpy(y_train), lenet_input(x_test), torch.from_numpy(y_test)


def _distort(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random affine distortion per image (N, 1, 32, 32); the background (-1) fills in."""
    n = x.shape[0]
    uniform = lambda low, high: low + (high - low) * torch.rand(n, generator=generator)  # noqa: E731
    angle = uniform(-1, 1) * math.radians(RECIPE["max_rotation_deg"])
    scale = uniform(*RECIPE["scale"])
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * RECIPE["max_shift_px"] * 2 / x.shape[-1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    with torch.inference_mode():
        return (model(x).argmax(1) == y).float().mean().item() * 100


def train_lenet5() -> TrainedLeNet:
    """Train LeNet-5 from a seeded initialisation; the same recipe and torch
    give the same weights (single-threaded, so no reduction order varies).
    Holds TORCH_TRACING: never beside torch.export (an ONNX export in another
    thread), as both touch torch's global tracing state."""
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = _split()
    generator = torch.Generator().manual_seed(RECIPE["seed"])
    threads = torch.get_num_threads()
    with TORCH_TRACING:
        torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and reproducible
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RECIPE["seed"])
                model = LeNet5()
            optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
            steps = RECIPE["epochs"] * math.ceil(len(x_train) / RECIPE["batch"])
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
            model.train()
            for _ in range(RECIPE["epochs"]):
                order = torch.randperm(len(x_train), generator=generator)
                for start in range(0, len(order), RECIPE["batch"]):
                    batch = order[start:start + RECIPE["batch"]]
                    loss = F.cross_entropy(model(_distort(x_train[batch], generator)), y_train[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
            model.eval()
            held_out = accuracy(model, x_test, y_test)
        finally:
            torch.set_num_threads(threads)
    return TrainedLeNet(state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
                        held_out_accuracy=held_out, held_out_images=len(x_test), train_images=len(x_train) // 2,
                        train_seconds=time.perf_counter() - started)


# Per process: what each cache file holds, and the weights trained here (the
# same recipe gives the same weights, so a second cache directory gets a copy).
_loaded: dict[Path, TrainedLeNet] = {}
_trained: list[TrainedLeNet] = []


def cached_lenet5(directory: Path, train: bool = True) -> TrainedLeNet | None:
    """The trained weights cached in ``directory``; when they are not there,
    trained first (``train``) or None. A file lock makes concurrent processes
    train once; the file is written under a temporary name and renamed, so a
    reader never sees half of it."""
    path = directory / f"lenet5-digits-{recipe_key()}.pt"
    if path in _loaded:
        return _loaded[path]
    if not train and not path.is_file():
        return None
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            trained = TrainedLeNet(**torch.load(path, map_location="cpu", weights_only=True))
        else:
            if not _trained:
                _trained.append(train_lenet5())
            trained = _trained[0]
            temporary = path.with_suffix(".tmp")
            torch.save(asdict(trained), temporary)
            temporary.replace(path)
    _loaded[path] = trained
    return trained

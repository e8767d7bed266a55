"""What a prediction looked at, as a heatmap over the model's input crop, by
Captum's implementations of four methods (a maintained library rather than
hand-written backward passes):

- ``gradcam``: Grad-CAM (Selvaraju et al. 2017), captum.attr.LayerGradCam at
  a spatial layer (default: the last layer whose output is still a map),
  ReLU of the gradient-weighted channel sum, bilinearly upsampled to the crop.
- ``occlusion``: Zeiler & Fergus 2014, section 4.2: a grey square slid over
  the image, captum.attr.Occlusion; the heat of a pixel is the mean drop of
  the class's softmax probability over the windows that covered it.
- ``guided_backprop`` (Springenberg et al. 2015) and ``deconvnet`` (Zeiler &
  Fergus 2014): captum.attr.GuidedBackprop / Deconvolution; the heat of a
  pixel is the largest |gradient| over its colour channels. Both are rules
  at ReLUs: a net without any (LeNet-5's tanh units) is refused them.

Captum overrides the gradient of ``nn.ReLU`` modules only; ReLU6 (MobileNet,
EfficientNet-Lite) is a clipped ReLU with the same rule (the gradient's ReLU
in place of, or after, the forward mask), so the two classes below register
Captum's own hook on ReLU6 too.

Every heatmap is (H, W) floats in [0, 1]: divided by its maximum, except the
two gradient images, whose few extreme pixels would leave the rest black:
they are divided by their 99.5th percentile and clipped to 1.

Memory: the model's parameters never require gradients (only the input or
the Grad-CAM layer's output does), and every gradient is a local of one call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from captum._utils.common import _register_backward_hook
from captum.attr import Deconvolution, GuidedBackprop, LayerAttribution, LayerGradCam, Occlusion
from torch import nn

from models.kernels import LayerError

METHODS = ("gradcam", "occlusion", "guided_backprop", "deconvnet")
OCCLUSION_WINDOWS = 13  # window positions per side: a 13 x 13 grid of grey squares
OCCLUSION_BATCH = 16  # occluded images per forward pass
GRADIENT_PERCENTILE = 0.995


# Guided backpropagation and DeconvNet are rules for the backward pass through ReLUs (Springenberg et al.
# 2015, fig. 1; Zeiler & Fergus 2014, 2.1); Captum applies them at these modules (ReLU6 added above).
RELU_FAMILY = {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6}
GRADIENT_RULE_METHODS = ("guided_backprop", "deconvnet")


def unavailable_methods(layer_types: Iterable[str]) -> dict[str, str]:
    """The methods that cannot apply to a net made of ``layer_types``
    (module class names), each with why: without a ReLU module, guided
    backpropagation and DeconvNet have no unit to apply their rule at, so
    both would be the plain input gradient (and the same picture): LeNet-5
    (tanh), GELU and SiLU nets (ConvNeXt, ViT, torchvision's EfficientNet),
    and those applying F.relu in ``forward`` (torchvision's GoogLeNet and
    Inception v3)."""
    types = set(layer_types)
    if types & RELU_FAMILY.keys():
        return {}
    units = sorted(types & {"Tanh", "Sigmoid", "SiLU", "GELU", "Hardswish", "ELU", "LeakyReLU", "Hardtanh"})
    reason = ("guided backpropagation and DeconvNet are rules for the backward pass through ReLUs, applied at "
              "ReLU modules, and this network has none" + (f" (its units are {', '.join(units)})" if units else
                                                            " (any ReLU it has is applied as a function)")
              + ": both would be the plain gradient of the class score. Grad-CAM and occlusion apply.")
    return {method: reason for method in GRADIENT_RULE_METHODS}


def prepare_for_gradients(model: nn.Module) -> nn.Module:
    """Freeze the parameters and turn in-place activations off (a backward
    hook cannot see a tensor that was overwritten in place). In place, on a
    model loaded for this purpose only."""
    model.requires_grad_(False)
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return model.eval()


class _ReluFamilyHooks:
    def _register_hooks(self, module: nn.Module) -> None:
        if isinstance(module, tuple(RELU_FAMILY.values())):
            self.backward_hooks.extend(_register_backward_hook(module, self._backward_hook, self))


class _GuidedBackprop(_ReluFamilyHooks, GuidedBackprop):
    pass


class _Deconvolution(_ReluFamilyHooks, Deconvolution):
    pass


def spatial_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Paths of the leaf modules whose output is a (N, C, H, W) map with more
    than one cell, in forward order (one inference pass)."""
    found: list[str] = []
    handles = []
    for path, module in model.named_modules():
        if path and not any(True for _ in module.children()):
            def hook(_m, _a, out, path=path):
                if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[2] * out.shape[3] > 1 \
                        and path not in found:
                    found.append(path)
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


@dataclass(frozen=True)
class Explanation:
    method: str
    target: int
    probability: float  # softmax probability of the target class
    layer: str | None  # Grad-CAM's layer
    heatmap: torch.Tensor  # (H, W) float32 in [0, 1], H x W = the input crop


def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).float().softmax(dim=-1)[0]


def _scaled(heat: torch.Tensor, percentile: float | None = None) -> torch.Tensor:
    heat = heat.detach().float().clamp_min(0)
    top = heat.flatten().quantile(percentile).item() if percentile else heat.max().item()
    return (heat / top).clamp_(0, 1) if top > 0 else torch.zeros_like(heat)


def grey_baseline(mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Mid-grey (0.5 in 0..1 pixels) in the model's normalised units, (1, C, 1, 1)."""
    return ((0.5 - torch.tensor(mean)) / torch.tensor(std)).reshape(1, -1, 1, 1)


def explain(model: nn.Module, x: torch.Tensor, method: str, target: int | None = None,
            layer: str | None = None, grey: torch.Tensor | None = None,
            cam_layers: list[str] | None = None, logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
            ) -> Explanation:
    """Heatmap of ``method`` for class ``target`` (default: the top-1) on
    ``x`` (1, C, H, W), normalised for ``model`` (prepared by
    prepare_for_gradients). ``layer``: Grad-CAM's, one of ``cam_layers``
    (default: spatial_layers(model, x), whose last is the default layer);
    ``grey``: the occlusion patch (1, C, 1, 1) in normalised units;
    ``logits``: the same model's forward pass on another runtime (a batch
    (N, C, H, W) -> (N, classes)), for occlusion, which needs no gradients.
    Raises LayerError for a Grad-CAM layer that is not a module of ``model``
    or has no spatial output, and ValueError for an unknown method or
    target, or a method that does not apply (``unavailable_methods``)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}.")
    refused = unavailable_methods(type(module).__name__ for module in model.modules())
    if method in refused:
        raise ValueError(f"{method} does not apply: {refused[method]}")
    probs = probabilities(model, x)
    if target is None:
        target = int(probs.argmax())
    if not 0 <= target < probs.numel():
        raise ValueError(f"target must be a class index from 0 to {probs.numel() - 1}; got {target}.")
    height, width = x.shape[2:]
    used_layer = None
    if method == "gradcam":
        cam_layers = cam_layers if cam_layers is not None else spatial_layers(model, x)
        used_layer = layer or (cam_layers[-1] if cam_layers else None)
        if used_layer is not None and used_layer not in dict(model.named_modules()):
            raise LayerError(f"{used_layer[:80]!r} is not a layer of this model; pick a path from its layer table.")
        if used_layer not in cam_layers:
            raise LayerError(f"Grad-CAM needs a layer whose output is a map of more than one cell; "
                             f"{str(used_layer)[:80]!r}'s is not "
                             f"(the last ones are {', '.join(cam_layers[-3:])}; see the layer table).")
        cam = LayerGradCam(model, model.get_submodule(used_layer))
        attribution = cam.attribute(x, target=target, relu_attributions=True)
        heat = LayerAttribution.interpolate(attribution.detach(), (height, width), interpolate_mode="bilinear")
        heatmap = _scaled(heat[0, 0])
    elif method == "occlusion":
        window = max(1, round(2 * height / (OCCLUSION_WINDOWS + 1)))
        stride = max(1, (height - window) // (OCCLUSION_WINDOWS - 1))
        baseline = grey if grey is not None else torch.zeros(1, x.shape[1], 1, 1)
        forward = logits or model
        occlusion = Occlusion(lambda batch: forward(batch).float().softmax(dim=-1))
        attribution = occlusion.attribute(
            x, target=target, sliding_window_shapes=(x.shape[1], window, window),
            strides=(x.shape[1], stride, stride), baselines=baseline.to(x.device, x.dtype).expand_as(x),
            perturbations_per_eval=OCCLUSION_BATCH)
        heatmap = _scaled(attribution[0].mean(dim=0))
    else:
        method_class = _GuidedBackprop if method == "guided_backprop" else _Deconvolution
        with warnings.catch_warnings():  # Captum announces its temporary hooks on every call
            warnings.filterwarnings("ignore", message="Setting backward hooks", category=UserWarning)
            attribution = method_class(model).attribute(x.clone().requires_grad_(True), target=target)
        heatmap = _scaled(attribution[0].abs().amax(dim=0), GRADIENT_PERCENTILE)
    return Explanation(method=method, target=target, probability=float(probs[target]), layer=used_layer,
                       heatmap=heatmap.detach().cpu())

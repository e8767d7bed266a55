"""models/explain.py on Lite0's real weights: an explanation leaves no
gradient behind on the model, and the ReLU6 networks get the guided rule."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from captum.attr import GuidedBackprop
from PIL import Image

from models.explain import explain, grey_baseline, prepare_for_gradients
from models.preprocess import preprocessing_for
from models.registry import get_entry
from models.weights import load_pretrained


@pytest.fixture(scope="module")
def lite0():
    entry = get_entry("efficientnet_lite0")
    model = prepare_for_gradients(load_pretrained(entry, "cpu"))
    return model, preprocessing_for(entry)(Image.fromarray(skimage.data.chelsea()))[None], preprocessing_for(entry)


@pytest.mark.parametrize("method", ["gradcam", "guided_backprop", "deconvnet"])
def test_no_gradient_outlives_an_explanation(lite0, method):
    model, x, _ = lite0
    result = explain(model, x, method)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert not result.heatmap.requires_grad and x.grad is None
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def test_guided_backprop_applies_its_rule_at_relu6(lite0):
    """Lite0 has ReLU6 and no nn.ReLU, so Captum's stock GuidedBackprop would
    return the plain gradient; ours must differ from it."""
    model, x, _ = lite0
    result = explain(model, x, "guided_backprop")
    stock = GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=result.target)
    stock_map = stock[0].abs().amax(dim=0)
    stock_map = (stock_map / stock_map.flatten().quantile(0.995)).clamp(0, 1)
    assert (result.heatmap - stock_map).abs().mean() > 0.05


def test_the_grey_patch_is_mid_grey_in_normalised_units(lite0):
    *_, preprocessing = lite0
    grey = grey_baseline(preprocessing.mean, preprocessing.std)
    assert grey.flatten().tolist() == [0.0, 0.0, 0.0]  # mean = std = 0.5: grey 0.5 -> 0
    assert np.allclose(grey_baseline((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).flatten().numpy(),
                       [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225])

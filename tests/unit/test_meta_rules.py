"""The direct shape rules of models/meta.py answer exactly as torch's own meta kernels
(shape, strides, dtype), and step aside (None) for what they do not check."""

import pytest
import torch

from models import meta

aten = torch.ops.aten


def m(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


AGREE = [
    (aten.convolution.default, (m(1, 3, 224, 224), m(64, 3, 7, 7), None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (m(1, 32, 17, 19), m(32, 1, 3, 5), m(32), [2, 1], [1, 2], [2, 1], False, [0, 0], 32)),
    (aten.convolution.default, (m(2, 8, 50), m(16, 4, 3), None, [3], [1], [2], False, [0], 2)),
    (aten.mean.dim, (m(1, 64, 7, 7), [-1, -2], True)),
    (aten.mean.dim, (m(1, 64, 7, 7), [2, 3])),
    (aten.add.Tensor, (m(1, 64, 7, 7), m(1, 64, 7, 7))),
    (aten.mul.Tensor, (m(3, 4), m(3, 4))),
    (aten.native_batch_norm.default, (m(1, 8, 5, 5), m(8), m(8), m(8), m(8), False, 0.1, 1e-5)),
]


@pytest.mark.parametrize("func,args", AGREE, ids=lambda v: str(v) if not isinstance(v, tuple) else None)
def test_shape_rule_matches_torch_meta_kernel(func, args):
    got = meta._FAST_RULES[func](args, {})
    want = func(*args)
    for g, w in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
        assert (g.shape, g.stride(), g.dtype) == (w.shape, w.stride(), w.dtype)


STEP_ASIDE = [
    # channel mismatch, output side below one, transposed: the real kernel raises or decides
    (aten.convolution.default, (m(1, 4, 8, 8), m(8, 3, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (m(1, 3, 2, 2), m(8, 3, 5, 5), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (m(1, 8, 4, 4), m(8, 3, 3, 3), None, [2, 2], [0, 0], [1, 1], True, [0, 0], 1)),
    (aten.add.Tensor, (m(1, 64, 7, 7), m(64, 1, 1))),  # broadcasting
    (aten.add.Tensor, (m(3, 4), m(3, 4, dtype=torch.float16))),  # type promotion
    (aten.mean.dim, (m(1, 64, 7, 7).transpose(1, 2), [2, 3])),  # not contiguous
]


@pytest.mark.parametrize("func,args", STEP_ASIDE)
def test_shape_rule_leaves_the_rest_to_torch(func, args):
    assert meta._FAST_RULES[func](args, {}) is None

"""Which input resolutions a model takes, found by tracing it, and why.

A page that offers a resolution box should say its limits before anyone
submits, and a refused value should be met with the smallest size that works
and the reason in the course's words, not PyTorch's. The rule is measured,
not guessed from the architecture: each probe is one meta-device trace
(models/analysis.py), about as fast as the analysis itself.

Search: the network shrinks its input by its total stride J (the jump of its
last map, 32 for VGG-16); the smallest multiple of J that traces is found by
bisection, then the sizes below it by bisection again (failures from a map
that vanishes are monotone in the size). A model whose side must be a
multiple of some n (ViT's 16-pixel patches) or that takes one size only
(fully connected layers sized for one map) is recognised by probing the
neighbours of what was found.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from models.analysis import MAX_RESOLUTION, AnalysisError, analyse_entry
from models.catalog import ModelEntry


@dataclass(frozen=True)
class ResolutionRule:
    smallest: int            # pixels per side, the smallest square input that traces
    only: bool               # the model takes its own input size and nothing else
    multiple_of: int | None  # the side must be a multiple of this (ViT: the patch size)
    total_stride: int        # input pixels per cell of the last spatial map
    reason: str              # why, in one sentence a person can act on

    def accepts(self, resolution: int) -> bool:
        if self.only:
            return resolution == self.smallest
        return resolution >= self.smallest and (not self.multiple_of or resolution % self.multiple_of == 0)


def _traces(entry: ModelEntry, side: int) -> bool:
    try:
        analyse_entry(entry, side)
        return True
    except AnalysisError:
        return False


def _first(lo: int, hi: int, works) -> int:
    """The smallest value in [lo, hi] that works, ``hi`` assumed to work, failures below it monotone."""
    while lo < hi:
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


@functools.lru_cache(maxsize=None)
def resolution_rule(entry: ModelEntry) -> ResolutionRule:
    """The resolutions ``entry`` takes: one trace for a net that takes any size (most
    ResNets and EfficientNets), up to about a dozen otherwise; memoised (pure given the
    entry and the library versions)."""
    own = entry.input_size[1]
    rows = analyse_entry(entry).layers
    jumps = [r.jump for r in rows if r.jump and not r.receptive_field_global and r.output_shape
             and len(r.output_shape) == 4]
    stride = max(jumps, default=1)
    works = functools.lru_cache(maxsize=None)(lambda side: _traces(entry, side))
    if works(1):  # a 1-pixel input traces: so does every size up to the model's own
        return ResolutionRule(1, False, None, stride, f"{entry.name} takes any size from 1 pixel up "
                                                      f"(its maps shrink {stride}-fold but never vanish).")
    if not works(min(2 * own, MAX_RESOLUTION)) and not works(own + stride) and not works(own - 1):
        return ResolutionRule(own, True, None, stride,
                              f"{entry.name} takes {own}×{own} pixels only: its fully connected layers are sized for "
                              f"the feature map that input size gives.")
    k = _first(1, max(own // stride, 1), lambda n: works(n * stride))
    smallest = _first((k - 1) * stride + 1, k * stride, works)
    if smallest > 1 and not works(smallest + 1) and works(2 * smallest):
        return ResolutionRule(smallest, False, smallest, stride,
                              f"{entry.name} needs a side that is a multiple of {smallest} pixels: its patches or "
                              f"windows must tile the map exactly.")
    shrinks = f"shrinks its input {stride}-fold through its strided layers" if stride > 1 else "has no strided layer"
    reason = (f"{entry.name} {shrinks}: below {smallest}×{smallest} pixels a feature map would be smaller than "
              f"the window that reads it.")
    return ResolutionRule(smallest, False, None, stride, reason)

"""Argument checks shared by the Python API: errors name the argument and the value."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within [lo, hi] (either bound optional); TypeError for non-integers (bools
    included), ValueError naming the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise ValueError(f"{name} must be >= {lo}, got {value}")
        if lo is None:
            raise ValueError(f"{name} must be <= {hi}, got {value}")
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return int(value)

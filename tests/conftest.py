"""Fixtures shared by the test modules."""

import pytest
from reference import SIMD, simd_level


@pytest.fixture(params=SIMD)
def simd(request):
    """Runs the test once per SIMD level this CPU supports, with the kernels forced to it."""
    with simd_level(request.param):
        yield request.param

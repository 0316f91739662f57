"""Loaded by pytest before any test or doctest module imports triton.

Triton kernels run in Triton's interpreter on CPU tensors unless TRITON_INTERPRET is already
set; on a GPU machine, set TRITON_INTERPRET=0 to test the compiled kernels (tests/test_gpu.py).
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

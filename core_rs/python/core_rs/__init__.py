"""marketmesh's Rust core: candle aggregation and indicator kernels.

The extension module is ``core_rs._core``; this package re-exports its public
names so callers write ``import core_rs``.
"""

from core_rs._core import VERSION

__all__ = ["VERSION"]

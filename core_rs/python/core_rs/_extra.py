"""TODO: the extra kernels."""

from __future__ import annotations

__all__: list[str] = []

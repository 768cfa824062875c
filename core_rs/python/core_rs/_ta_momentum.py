"""TODO: the momentum kernels."""

from __future__ import annotations

__all__: list[str] = []

"""Shared pytest set-up: importing ``services`` puts the generated gRPC stubs on sys.path."""

import services  # noqa: F401

"""marketmesh services.

protoc emits absolute imports (``from marketmesh.v1 import common_pb2``), so
the generated package root is put on ``sys.path`` here, once, before any
service module imports a stub.
"""

import sys
from pathlib import Path

_GENERATED = str(Path(__file__).resolve().parent / "common" / "gen")
if _GENERATED not in sys.path:
    sys.path.insert(0, _GENERATED)

"""Shared pytest set-up.

Importing ``services`` puts the generated gRPC stubs on sys.path. Servers
started in this process share one page-token key (set here) so a token
issued by one test server is never checked against another's key, and no
test writes a key file into the working tree.
"""

import os

import services  # noqa: F401

os.environ.setdefault("MM_PAGE_TOKEN_SECRET", "marketmesh-tests-page-token-key")

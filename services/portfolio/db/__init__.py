"""Storage of the portfolio service: schema, engine, migrations, repository.

Usage::

    url = resolve_url(os.environ.get("MM_DATABASE_URL"), data_dir)
    repo = await Repository.open(url)   # connects and migrates to head
    ...
    await repo.close()
"""

from services.portfolio.db.engine import DatabaseUrlError, redact, resolve_url
from services.portfolio.db.repository import (
    DuplicateClientId,
    LegRow,
    PortfolioNotFound,
    PortfolioRow,
    Repository,
    StaleWrite,
    StorageError,
    StorageUnavailable,
    TransactionRow,
)

__all__ = [
    "DatabaseUrlError",
    "DuplicateClientId",
    "LegRow",
    "PortfolioNotFound",
    "PortfolioRow",
    "Repository",
    "StaleWrite",
    "StorageError",
    "StorageUnavailable",
    "TransactionRow",
    "redact",
    "resolve_url",
]

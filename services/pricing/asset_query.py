"""ListAssets / GetAsset."""

import numpy as np

from marketmesh.v1 import common_pb2, pricing_pb2
from services.common.errors import InvalidArgument
from services.common.pagination import decode_page_token, encode_page_token
from services.common.validation import parse_limit
from services.pricing.assets import AssetInfo
from services.pricing.market import Market

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000


def asset_pb(info: AssetInfo) -> pricing_pb2.Asset:
    asset = pricing_pb2.Asset(
        symbol=info.symbol,
        name=info.name,
        sectors=list(info.sectors),
        circulating_supply=info.circulating_supply,
        total_supply=info.total_supply,
    )
    if info.max_supply is not None:
        asset.max_supply = info.max_supply
    return asset


def get_asset(market: Market, request: pricing_pb2.GetAssetRequest) -> pricing_pb2.GetAssetResponse:
    _, sid = market.universe.sid_of(request.symbol)
    info = market.universe.assets[sid]
    assert info is not None
    return pricing_pb2.GetAssetResponse(asset=asset_pb(info))


def list_assets(
    market: Market, request: pricing_pb2.ListAssetsRequest, now_ms: int
) -> pricing_pb2.ListAssetsResponse:
    universe = market.universe
    page_size = parse_limit(request.page_size, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    sector = request.sector.strip().lower()
    if request.tier not in common_pb2.Tier.values():
        raise InvalidArgument("tier", f"unknown tier value {request.tier}")
    sids = universe.sector_sids([request.sector], "sector") if sector else universe.active_sids
    if request.tier != common_pb2.TIER_UNSPECIFIED:
        tiers = market.quote_columns(sids, now_ms).tier
        sids = sids[tiers == request.tier]
    # Stable order for keyset paging: by symbol.
    symbols = sorted(universe.symbol(int(s)) for s in sids)
    start = 0
    if request.page_token:
        token = decode_page_token(request.page_token)
        if (
            token.get("kind") != "assets"
            or token.get("sector") != sector
            or (token.get("tier") != request.tier)
        ):
            raise InvalidArgument(
                "page_token", "was issued for a different filter; keep sector and tier unchanged"
            )
        after = token.get("after")
        if not isinstance(after, str):
            raise InvalidArgument("page_token", "malformed page token")
        start = int(np.searchsorted(np.asarray(symbols, dtype=object), after, side="right"))
    page = symbols[start : start + page_size]
    next_token = ""
    if start + page_size < len(symbols):
        next_token = encode_page_token(
            {"kind": "assets", "sector": sector, "tier": request.tier, "after": page[-1]}
        )
    assets = []
    for symbol in page:
        info = universe.assets[universe.sid_by_symbol[symbol]]
        assert info is not None
        assets.append(asset_pb(info))
    return pricing_pb2.ListAssetsResponse(
        assets=assets, next_page_token=next_token, total_size=len(symbols)
    )

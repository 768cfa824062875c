"""marketmesh.v1.SignalsService: requests in, plain functions, responses out."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import numpy as np

from marketmesh.v1 import backtest_pb2, signals_pb2
from services.common.auth import current_owner, require_owner
from services.common.errors import InvalidArgument, Unavailable
from services.common.intervals import MS_BY_ENUM
from services.common.pagination import decode_page_token, encode_page_token
from services.common.validation import ms_to_timestamp, now_ms, parse_limit, parse_symbol
from services.signals import alerts as alert_rules
from services.signals import breadth as breadth_mod
from services.signals import indicator_query, levels
from services.signals.app import SignalsApp
from services.signals.backtest import portfolio as portfolio_backtest
from services.signals.backtest import single as single_backtest
from services.signals.backtest import sweep as sweep_backtest
from services.signals.backtest.single import Market
from services.signals.backtest.spec import parse_run
from services.signals.candles import CandleSeries
from services.signals.market_metrics import MetricsTally, ingest_points
from services.signals.screen import parse_screen, run_screen
from services.signals.signal_view import parse_interval

MAX_HISTORY_POINTS = 5_000
DEFAULT_INDICATOR_BARS = 500
MAX_INDICATOR_BARS = 50_000
DEFAULT_ALERT_PAGE = 100
MAX_ALERT_PAGE = 1_000


class SignalsServicer:
    def __init__(self, app: SignalsApp) -> None:
        self.app = app

    def _interval(self, value: int, field: str = "interval") -> int:
        return parse_interval(value, self.app.intervals, field)

    def _require_data(self) -> None:
        if not self.app.universe.size:
            raise Unavailable(
                "signals has no market data yet: pricing at "
                f"{self.app.settings.pricing_address} has not answered "
                f"({self.app.connection.reason}); retry shortly"
            )

    async def GetSignal(
        self, request: signals_pb2.GetSignalRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        interval = self._interval(request.interval)
        parse_symbol(request.symbol)  # malformed input is the caller's, data or not
        self._require_data()
        symbol, sid = self.app.universe.sid_of(request.symbol)
        if not self.app.synced.is_set() and not self.app.book(interval).has_data[sid]:
            raise Unavailable(
                f"signals has not read the history of {symbol} from pricing yet "
                f"({self.app.connection.reason}); retry shortly"
            )
        # Preserialized (see server.py): the cached answer goes out as it is.
        return await self.app.signal_response(interval, sid)

    async def ScreenSignals(
        self, request: signals_pb2.ScreenSignalsRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.ScreenSignalsResponse:
        interval = self._interval(request.interval)
        screen = parse_screen(request, self.app.universe)
        return run_screen(
            screen,
            request,
            self.app.book(interval),
            self.app.universe,
            interval,
            now_ms=now_ms(),
            stale=self.app.is_stale(),
            flipped=self.app.flipped_mask(interval) if screen.flipped_within_ms else None,
        )

    async def GetMarketBreadth(
        self, request: signals_pb2.GetMarketBreadthRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.GetMarketBreadthResponse:
        interval = self._interval(request.interval)
        window_ms = 0
        if request.HasField("history_window"):
            w = request.history_window
            window_ms = w.seconds * 1000 + w.nanos // 1_000_000
            if window_ms <= 0:
                raise InvalidArgument("history_window", "must be a positive duration")
        app = self.app
        now = now_ms()
        stamp = ms_to_timestamp(now)
        response = signals_pb2.GetMarketBreadthResponse(
            market=breadth_mod.to_pb(app.breadth_now(interval), app.regimes[interval], stamp),
            stale=app.is_stale(),
        )
        universe = app.universe
        regimes = app.sector_regimes[interval]
        for k, name in enumerate(universe.sector_names):
            mask = np.zeros(universe.size, dtype=bool)
            mask[universe.sector_members[k]] = True
            figures = app.breadth_now(interval, mask)
            if figures.token_count:
                response.sectors.add(
                    sector=name,
                    breadth=breadth_mod.to_pb(
                        figures, regimes.get(name, signals_pb2.REGIME_UNSPECIFIED), stamp
                    ),
                )
        if window_ms:
            assert app.store is not None
            bodies = await app.store.run(
                app.store.breadth_since, interval, now - window_ms, MAX_HISTORY_POINTS
            )
            response.history.extend(signals_pb2.Breadth.FromString(b) for b in bodies)
        return response

    async def GetSupportResistance(
        self, request: signals_pb2.GetSupportResistanceRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.GetSupportResistanceResponse:
        query = levels.parse_levels_request(request)
        self._require_data()
        symbol, _ = self.app.universe.sid_of(query.symbol)
        history = await self._history(symbol, query.interval, bars=query.lookback + 1)
        # ~40 ms of numpy and string work at 5,000 candles: off the event loop.
        report = await asyncio.to_thread(levels.find_levels, history, lookback=query.lookback)
        return levels.build_response(symbol, query.interval, report)

    async def ComputeIndicators(
        self, request: signals_pb2.ComputeIndicatorsRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.ComputeIndicatorsResponse:
        query = indicator_query.parse_indicator_request(request)
        self._require_data()
        symbol, _ = self.app.universe.sid_of(query.symbol)
        warmup = indicator_query.warmup_bars(query.specs)
        width = MS_BY_ENUM[query.interval]
        if query.start_ms is None:
            candles = await self._history(
                symbol, query.interval, bars=DEFAULT_INDICATOR_BARS + warmup, end_ms=query.end_ms
            )
            first = max(0, len(candles.close) - DEFAULT_INDICATOR_BARS)
        else:
            fetch_from = query.start_ms - warmup * width
            span = (query.end_ms or now_ms()) - fetch_from
            if span // width > MAX_INDICATOR_BARS:
                raise InvalidArgument(
                    "start_time",
                    f"at most {MAX_INDICATOR_BARS:,} candles per call; narrow the range",
                )
            candles = await self._history(
                symbol, query.interval, start_ms=fetch_from, end_ms=query.end_ms
            )
            first = int(np.searchsorted(candles.open_ms, query.start_ms))
        return indicator_query.build_response(symbol, query.interval, query.specs, candles, first)

    async def _history(
        self,
        symbol: str,
        interval: int,
        *,
        bars: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> CandleSeries:
        try:
            history = await self.app.link.candles(
                symbol, interval, bars=bars, start_ms=start_ms, end_ms=end_ms
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(
                f"candle history comes from pricing, which did not answer ({err.code().name}); "
                "retry shortly"
            ) from None
        return history.closed

    async def StreamSignalEvents(
        self, request: signals_pb2.StreamSignalEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[signals_pb2.StreamSignalEventsResponse]:
        app = self.app
        assert app.hub is not None
        owner = current_owner()
        universe = app.universe
        symbols = {parse_symbol(s, f"symbols[{i}]") for i, s in enumerate(request.symbols)}
        for i, s in enumerate(sorted(symbols)):
            if s not in universe.sid_by_symbol:
                raise InvalidArgument(f"symbols[{i}]", f"unknown symbol {s!r}")
        mask = universe.sector_mask(list(request.sectors), "sectors")
        if mask is not None:
            symbols |= {universe.symbols[s] for s in np.flatnonzero(mask).tolist()}
        types = set(request.event_types)
        for i, t in enumerate(request.event_types):
            if t not in signals_pb2.SignalEventType.values() or t == 0:
                raise InvalidArgument(f"event_types[{i}]", f"unknown event type {t}")
        filtered = bool(request.symbols or request.sectors)
        alert_type = signals_pb2.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED

        def wanted(event: signals_pb2.SignalEvent, event_owner: str | None) -> bool:
            if types and event.type not in types:
                return False
            if event.type == alert_type and (owner is None or event_owner != owner):
                return False
            # Market-wide events (no symbol) pass symbol filters.
            return not (filtered and event.symbol and event.symbol not in symbols)

        async for message in app.hub.subscribe(request.from_event_id, wanted):
            yield message

    async def PublishMetrics(
        self,
        request_iterator: AsyncIterator[signals_pb2.PublishMetricsRequest],
        context: grpc.aio.ServicerContext,
    ) -> signals_pb2.PublishMetricsResponse:
        self._require_data()
        tally = MetricsTally()
        async for request in request_iterator:
            if request.points:
                ingest_points(
                    self.app.metrics,
                    tally,
                    request.points,
                    self.app.universe.sid_by_symbol,
                    now_ms(),
                )
        return tally.to_response()

    # -- alerts (owned) ------------------------------------------------------

    async def CreateAlert(
        self, request: signals_pb2.CreateAlertRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.CreateAlertResponse:
        owner = require_owner()
        app = self.app
        self._require_data()
        alert = alert_rules.validate_create(
            request,
            symbol_of=lambda raw, field: app.universe.sid_of(raw, field)[0],
            sector_of=app.universe.canonical_sector,
            intervals=set(app.intervals),
            now_ms=now_ms(),
        )
        if len(app.alerts.owned(owner)) >= alert_rules.MAX_ALERTS_PER_OWNER:
            raise InvalidArgument(
                "symbol", f"at most {alert_rules.MAX_ALERTS_PER_OWNER} alerts per owner"
            )
        await app.add_alert(alert_rules.AlertRule(alert, owner))
        return signals_pb2.CreateAlertResponse(alert=alert)

    async def ListAlerts(
        self, request: signals_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.ListAlertsResponse:
        owner = require_owner()
        size = parse_limit(request.page_size, "page_size", DEFAULT_ALERT_PAGE, MAX_ALERT_PAGE)
        after = ""
        if request.page_token:
            token = decode_page_token(request.page_token)
            if token.get("kind") != "alerts" or token.get("owner") != owner:
                raise InvalidArgument("page_token", "was not issued for this listing")
            after = str(token.get("after", ""))
        rules = [r for r in self.app.alerts.owned(owner) if r.alert.id > after]
        page = rules[:size]
        response = signals_pb2.ListAlertsResponse(alerts=[r.alert for r in page])
        if len(rules) > size:
            response.next_page_token = encode_page_token(
                {"kind": "alerts", "owner": owner, "after": page[-1].alert.id}
            )
        return response

    async def DeleteAlert(
        self, request: signals_pb2.DeleteAlertRequest, context: grpc.aio.ServicerContext
    ) -> signals_pb2.DeleteAlertResponse:
        owner = require_owner()
        if not request.alert_id:
            raise InvalidArgument("alert_id", "is required")
        await self.app.delete_alert(request.alert_id, owner)
        return signals_pb2.DeleteAlertResponse()

    # ----- backtests ------------------------------------------------------------

    def _market(self) -> Market:
        u = self.app.universe
        btc = u.symbols[u.btc_sid] if u.btc_sid is not None else None
        return Market(self.app.link, self.app.weights, btc)

    async def RunBacktest(
        self, request: backtest_pb2.RunBacktestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backtest_pb2.RunBacktestResponse]:
        spec = parse_run(request)
        async for message in single_backtest.run(spec, self._market()):
            yield message

    async def RunPortfolioBacktest(
        self, request: backtest_pb2.RunPortfolioBacktestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backtest_pb2.RunPortfolioBacktestResponse]:
        spec = portfolio_backtest.parse(request)
        self._require_data()
        async for message in portfolio_backtest.run(spec, self._market(), self.app.universe):
            yield message

    async def SweepBacktest(
        self, request: backtest_pb2.SweepBacktestRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backtest_pb2.SweepBacktestResponse]:
        spec = sweep_backtest.parse_sweep(request)
        async for message in sweep_backtest.run(spec, self._market()):
            yield message

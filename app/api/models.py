"""Request and response bodies of the REST API, declared once: they validate requests and
generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SessionId = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$",
                                 description="Engine session id (12 hex digits).")]


class Strict(BaseModel):
    """Unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    error: str
    problems: list[str] | None = Field(None, description="One per problem, as 'field: what is "
                                                          "wrong'.")


# -- engines ------------------------------------------------------------------------------------
class Engine(BaseModel):
    session_id: str
    name: str
    template: str
    mode: Literal["paper", "sandbox", "live"]
    state: Literal["Stopped", "Starting", "Running", "Stopping", "Error"]
    container_name: str
    container_id: str | None
    image: str
    actor: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    final_state: str | None
    exit_code: int | None
    error: str | None
    status: dict[str, Any] = Field(description="The engine's last snapshot: trader_state, "
                                   "strategies, open_orders, orders, fills, positions, balances, "
                                   "realized_pnl, unrealized_pnl.")
    status_at: datetime | None
    parameters: dict[str, Any]
    memory_limit_mb: int
    cpu_limit: float


class OneEngine(BaseModel):
    engine: Engine


class Engines(BaseModel):
    engines: list[Engine]


class StartEngine(Strict):
    template: str = Field(examples=["paper_trading"], description="paper_trading, "
                          "sandbox_engine or live_engine")
    parameters: dict[str, Any] = Field(default_factory=dict,
                                       description="Engine and strategy template parameters.")
    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    confirm: str | None = Field(None, max_length=64, description="Live engines: the engine's "
                                                                 "name, typed to confirm.")


class EngineSession(Strict):
    session_id: SessionId


class RestartEngine(Strict):
    session_id: SessionId
    confirm: str | None = Field(None, max_length=64)


class EmergencyStop(Strict):
    session_id: SessionId | None = None
    all: bool = Field(False, description="Every active engine (halt, cancel, flatten: every "
                                         "running one).")
    tier: Literal["halt", "cancel", "flatten", "kill"] = Field(
        "kill", description="halt: no new orders (HALTED); cancel: cancel every open order; "
                            "flatten: cancel and close every position; kill: SIGKILL the "
                            "container (never refused for the engine's state).")


class EngineConfigChange(Strict):
    session_id: SessionId
    parameters: dict[str, Any]


class EngineLogs(BaseModel):
    session_id: str
    lines: list[str]


class Health(BaseModel):
    docker: Literal["reachable", "unreachable"]
    detail: str
    image: str
    image_present: bool | None
    active_engines: int
    monitor: dict[str, Any] | None = None


class Containers(BaseModel):
    containers: list[dict[str, Any]]


class Removed(BaseModel):
    removed: list[str]


# -- live operations inside a running engine -----------------------------------------------------
Decimalish = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=40,
                                  description="A decimal number, as text.")]
InstrumentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9/_.^-]{1,60}\.[A-Za-z0-9_]{1,30}$",
                                    description="e.g. BTCUSDT-PERP.BINANCE",
                                    examples=["BTCUSDT-PERP.BINANCE"])]
ClientOrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class SubmitOrder(Strict):
    session_id: SessionId
    instrument_id: InstrumentId
    side: Literal["BUY", "SELL"]
    quantity: Decimalish
    type: Literal["MARKET", "LIMIT"] = "MARKET"
    price: Decimalish | None = Field(None, description="The limit price (LIMIT orders).")
    tif: Literal["GTC", "IOC"] = "GTC"
    reduce_only: bool = False
    confirm: str | None = Field(None, max_length=64, description=(
        "Live engines: the engine's name, for orders whose notional is above the "
        "confirmation threshold (WORKBENCH_LIVE_CONFIRM_NOTIONAL)."))


class OrderRef(Strict):
    session_id: SessionId
    client_order_id: ClientOrderId


class ModifyOrder(OrderRef):
    quantity: Decimalish | None = None
    price: Decimalish | None = None


class ClosePosition(Strict):
    session_id: SessionId
    position_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9/_.^-]{1,128}$")] | None = None
    instrument_id: InstrumentId | None = None


class SetTradingState(Strict):
    session_id: SessionId
    state: Literal["ACTIVE", "REDUCING", "HALTED"]


class StrategyCommand(Strict):
    session_id: SessionId
    action: Literal["pause", "resume", "stop"]
    strategy_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]{1,64}-[A-Za-z0-9_]{1,32}$",
                                      examples=["EMACross-000"])]


class RiskChange(Strict):
    session_id: SessionId
    settings: dict[Annotated[str, Field(max_length=64)], str | float | int | bool | None] = Field(
        description="NAME=VALUE: max_daily_loss=500, max_daily_loss.action=HALTED, "
                    "max_position.cancel_orders=true (0 or \"off\": no limit).",
        examples=[{"max_daily_loss": "500", "max_daily_loss.action": "HALTED"}])


class CommandAnswer(BaseModel):
    session_id: str
    engine: str
    command: str
    result: dict[str, Any] = Field(description="What the engine answered: for orders `order` "
                                   "and `answer` (OrderAccepted, OrderFilled, ...).")
    took_ms: float


class Orders(BaseModel):
    session_id: str
    orders: list[dict[str, Any]]


class Fills(BaseModel):
    session_id: str
    fills: list[dict[str, Any]]


class Positions(BaseModel):
    session_id: str
    positions: list[dict[str, Any]] = Field(description="With realized and unrealized PnL.")
    net: dict[str, float] = Field(description="Net position per instrument (every strategy).")


class RiskReport(BaseModel):
    session_id: str
    limits: dict[str, Any]
    values: dict[str, Any] = Field(default_factory=dict)
    breached: list[dict[str, Any]] = Field(default_factory=list)
    trading_state: str | None = None
    running: bool
    currency: str | None = None


class FeedReport(BaseModel):
    session_id: str
    instruments: dict[str, Any]
    clients: dict[str, bool]
    disconnections: int
    gap_seconds: float


class EmergencyTierAnswer(BaseModel):
    results: list[dict[str, Any]] = Field(description="One per engine: its answer, or `error`.")


# -- alerts and metrics --------------------------------------------------------------------------
class AlertOut(BaseModel):
    id: int
    rule: str
    key: str
    severity: str
    session_id: str | None
    engine: str | None
    message: str
    first_at: datetime
    last_at: datetime
    occurrences: int
    deliveries: dict[str, str]


class Alerts(BaseModel):
    alerts: list[AlertOut]


class AlertRuleOut(BaseModel):
    name: str
    title: str
    unit: str
    severity: str
    enabled: bool
    threshold: float | None
    cooldown_s: int
    channels: list[str]


class AlertRules(BaseModel):
    rules: list[AlertRuleOut]
    channels: list[str] = Field(description="Configured channels, without secrets.")


class AlertRuleChange(Strict):
    enabled: bool | None = None
    threshold: float | None = Field(None, gt=0)
    cooldown_s: int | None = Field(None, ge=0, le=86_400)
    channels: list[Literal["webhook", "email"]] | None = None


class MetricIn(Strict):
    timestamp: datetime | float | None = Field(None, description="ISO 8601 or epoch seconds; "
                                                                "default: now.")
    metric_name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")]
    value: float
    source: Annotated[str, Field(min_length=1, max_length=128)]


class MetricOut(BaseModel):
    timestamp: datetime
    metric_name: str
    value: float
    source: str


class Metrics(BaseModel):
    metrics: list[MetricOut]


# -- backtests ----------------------------------------------------------------------------------
class Venue(Strict):
    starting_balance: str | None = Field(None, examples=["1000000"], max_length=40)
    currency: str | None = Field(None, max_length=16)
    oms_type: str | None = Field(None, max_length=16)
    account_type: str | None = Field(None, max_length=16)
    leverage: float | None = None
    fee_model: str | None = Field(None, max_length=32)
    fixed_commission: str | None = Field(None, max_length=40)
    prob_slippage: float | None = None
    prob_fill_on_limit: float | None = None
    random_seed: int | None = None


# The pages, the CLI and the API read an End alike.
END_DOC = ("Last day or instant of the data, included: a day alone (2024-03-08) is that "
           "whole day.")


class SubmitBacktest(Strict):
    strategy: str = Field(examples=["ema_cross"], max_length=64)
    bar_type: str = Field(examples=["BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"],
                          max_length=256)
    start: str | None = Field(None, examples=["2024-03-01"], max_length=40)
    end: str | None = Field(None, examples=["2024-03-08"], max_length=40, description=END_DOC)
    parameters: dict[str, Any] = Field(default_factory=dict)
    venue: Venue = Field(default_factory=Venue)
    label: str = Field("", max_length=200)
    runtime: Literal["local", "docker", "dask"] = "local"


class SubmitSweep(Strict):
    strategy: str = Field(examples=["ema_cross"], max_length=64)
    bar_type: str = Field(max_length=256)
    grid: dict[str, list[Any]] = Field(examples=[{"fast_ema_period": [5, 10],
                                                  "slow_ema_period": [20, 40]}])
    start: str | None = Field(None, max_length=40)
    end: str | None = Field(None, max_length=40, description=END_DOC)
    random_draws: int | None = Field(None, ge=1, le=10_000)
    constraints: list[str] = Field(default_factory=list, max_length=20)
    fixed: dict[str, Any] = Field(default_factory=dict)
    venue: Venue = Field(default_factory=Venue)
    seed: int = 0
    label: str = Field("", max_length=200)
    runtime: Literal["local", "docker", "dask"] = "local"


class Run(BaseModel):
    run_id: str
    status: Literal["Queued", "Running", "Paused", "Completed", "Failed", "Cancelled"]
    strategy: str
    instrument_id: str
    bar_type: str
    start: datetime | None
    end: datetime | None
    label: str
    parameters: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    phase: str | None
    progress: float | None
    error: str | None
    total_return: float | None
    sharpe: float | None
    max_drawdown: float | None
    num_trades: int | None
    final_equity: float | None
    currency: str | None
    sweep_id: str | None
    runtime: str
    actor: str | None = None


class RunDetail(BaseModel):
    run: Run
    statistics: dict[str, Any] | None = Field(None, description="Every metric of a completed "
                                                                "run (None until completed).")
    warnings: list[str] = Field(default_factory=list)


class Runs(BaseModel):
    runs: list[Run]


class SweepSubmitted(BaseModel):
    sweep_id: str
    run_ids: list[str]


# -- strategies ---------------------------------------------------------------------------------
class TemplateSummary(BaseModel):
    name: str
    kind: str
    title: str
    description: str
    parameters: dict[str, dict[str, Any]]
    error: str | None = None


class Templates(BaseModel):
    templates: list[TemplateSummary]


class ValidateStrategy(Strict):
    strategy: str = Field(examples=["ema_cross"], max_length=64)
    parameters: dict[str, Any] = Field(default_factory=dict)
    instrument_class: str | None = Field(None, max_length=32, examples=["CryptoPerpetual"])


class Validation(BaseModel):
    valid: bool
    parameters: dict[str, Any] | None = Field(None, description="Every parameter, defaults "
                                                                "filled in, when valid.")
    problems: list[str] = Field(default_factory=list)


# -- identity -----------------------------------------------------------------------------------
class TokenRequest(Strict):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    name: str = Field("api", min_length=1, max_length=64, description="What the token is for.")
    expires_days: float | None = Field(None, gt=0, le=3650)


class IssuedToken(BaseModel):
    token: str = Field(description="Shown this once; send it as Authorization: Bearer <token>.")
    token_id: str
    username: str
    expires_at: datetime | None


class Me(BaseModel):
    username: str
    roles: list[str]


class Live(BaseModel):
    status: Literal["ok"]

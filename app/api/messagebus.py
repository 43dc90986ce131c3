"""``/ws/messagebus``: the workbench's event hub as a websocket of JSON events.

Each message is one event ``{"seq", "type", "source", "ts", "data"}`` with ``type`` one of
nautilus_engine_status, resource_metrics, error_events, order_events, position_events,
risk_events (and alert_events). Authentication by API token, never in the URL: the
``Authorization: Bearer`` header, or (browsers cannot set it) a first message
``{"token": "nwb_..."}`` within 5 s. Query parameters: ``types`` (comma-separated, default
all), ``session_id`` (one engine), ``replay=true`` (the hub's recent events first).

A client that reads too slowly loses its oldest events (the hub never waits for it); the
``dropped`` count of each message says how many were lost before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from services import events
from services.errors import AuthenticationError

router = APIRouter(tags=["events"])
AUTH_TIMEOUT_S = 5.0
CLOSE_UNAUTHENTICATED, CLOSE_INVALID = 4401, 4422


async def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    try:
        first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        return str(json.loads(first).get("token") or "") or None
    except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect):
        return None


@router.websocket("/ws/messagebus")
async def messagebus(websocket: WebSocket) -> None:
    workbench = websocket.app.state.workbench
    query = websocket.query_params
    wanted = [t.strip() for t in (query.get("types") or "").split(",") if t.strip()] or None
    await websocket.accept()
    unknown = sorted(set(wanted or ()) - set(events.EVENT_TYPES))
    if unknown:  # a close reason has at most 123 bytes: the known types are documented
        await websocket.close(CLOSE_INVALID, f"unknown event types {unknown}"[:120])
        return
    token = await _token(websocket)
    try:
        if token is None:
            raise AuthenticationError("send an API token: Authorization: Bearer, or a first "
                                      "message {\"token\": ...}")
        principal = await run_in_threadpool(workbench.tokens.authenticate, token)
    except AuthenticationError as e:
        await websocket.close(CLOSE_UNAUTHENTICATED, str(e)[:120])
        return
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    subscription = workbench.hub.subscribe(
        wanted, query.get("session_id") or None, replay=query.get("replay") == "true",
        notify=lambda: loop.call_soon_threadsafe(ready.set))
    closed = asyncio.ensure_future(_until_closed(websocket))
    try:
        await websocket.send_json({"type": "hello", "user": principal.name,
                                   "types": wanted or list(events.EVENT_TYPES)})
        while not closed.done():
            ready.clear()
            for event in subscription.drain():
                await websocket.send_json({**event.to_json(), "dropped": subscription.dropped})
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        subscription.close()
        closed.cancel()
        with contextlib.suppress(RuntimeError):
            await websocket.close()


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()

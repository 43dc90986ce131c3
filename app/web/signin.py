"""The sign-in and sign-out pages: plain HTML forms, no script, nothing loaded from elsewhere."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from app.web.access import SESSION_COOKIE, SessionCookie, cookies_of
from services.errors import AuthenticationError

TITLE = "Nautilus Workbench"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 :root {{ color-scheme: light dark; }}
 body {{ margin: 0; min-height: 100vh; display: grid; place-items: center;
        font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
        background: #0b1f2a; color: #e6edf3; }}
 form {{ width: 340px; padding: 32px; border-radius: 10px; background: #12303f;
        box-shadow: 0 8px 32px rgba(0,0,0,.35); }}
 h1 {{ margin: 0 0 4px; font-size: 20px; }} p.sub {{ margin: 0 0 24px; color: #9fb3c1; }}
 label {{ display: block; margin: 12px 0 4px; color: #9fb3c1; font-size: 13px; }}
 input {{ box-sizing: border-box; width: 100%; padding: 9px 10px; border-radius: 6px;
         border: 1px solid #2d5568; background: #0b1f2a; color: inherit; font-size: 15px; }}
 button {{ margin-top: 22px; width: 100%; padding: 10px; border: 0; border-radius: 6px;
          background: #1f8fb5; color: white; font-size: 15px; font-weight: 600; cursor: pointer; }}
 .error {{ margin: 0 0 8px; padding: 8px 10px; border-radius: 6px; background: #5c1d24;
          color: #ffd7dc; }}
 .note {{ margin: 0 0 8px; padding: 8px 10px; border-radius: 6px; background: #1c4254; }}
</style></head>
<body><form method="post" action="/login">
<h1>{title}</h1><p class="sub">Sign in to continue</p>
{message}
<input type="hidden" name="next" value="{next}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></body></html>"""


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else (other sites, //host) is /."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def page(next_path: str = "/", error: str = "", note: str = "", username: str = "",
         status: int = 200) -> HTMLResponse:
    message = (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else
               f'<p class="note">{html.escape(note)}</p>' if note else "")
    return HTMLResponse(_PAGE.format(title=TITLE, message=message, next=html.escape(next_path),
                                     username=html.escape(username)), status_code=status,
                        headers={"Cache-Control": "no-store"})


def signin_router(workbench, cookie: SessionCookie) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    async def show(request: Request, next: str = "/"):  # noqa: A002 - the query parameter
        note = "You signed out." if request.query_params.get("signed_out") else ""
        return page(safe_next(next), note=note)

    @router.post("/login")
    async def sign_in(request: Request, username: str = Form(""), password: str = Form(""),
                      next: str = Form("/")):  # noqa: A002
        target = safe_next(next)
        try:
            principal = await run_in_threadpool(workbench.users.authenticate, username.strip(),
                                                password, "password (web)")
            secret = await run_in_threadpool(
                workbench.sessions.start, principal, request.headers.get("user-agent", ""),
                request.client.host if request.client else "")
        except AuthenticationError as e:
            return page(target, error=str(e), username=username, status=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie.value(secret),
                            max_age=int(workbench.sessions.lifetime.total_seconds()),
                            httponly=True, samesite="lax", secure=cookie.secure, path="/")
        return response

    @router.post("/logout")
    async def sign_out(request: Request):
        secret = cookie.session_secret(cookies_of(request.scope["headers"]).get(SESSION_COOKIE))
        if secret:
            await run_in_threadpool(workbench.sessions.end, secret)
        response = RedirectResponse("/login?signed_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router

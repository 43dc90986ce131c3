"""Identity: trade a username and password for a token; who am I."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import caller, workbench
from app.api.models import IssuedToken, Me, TokenRequest
from app.api.routes import PUBLIC, READ, declare
from services.identity.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post("/auth/token", status_code=201, response_model=IssuedToken,
             summary="Username and password -> a personal API token",
             **declare(PUBLIC, 401, 422))
def issue_token(body: TokenRequest, wb=Depends(workbench)):
    """Wrong credentials, a disabled user and an unknown user all answer the same 401; after
    5 failures the account waits longer between attempts."""
    principal = wb.users.authenticate(body.username, body.password, "password (api)")
    token, secret = wb.tokens.create(body.name, expires_days=body.expires_days,
                                     principal=principal)
    return {"token": secret, "token_id": token.token_id, "username": token.username,
            "expires_at": token.expires_at}


@router.get("/auth/me", response_model=Me, summary="The token's user and roles", **declare(READ))
def me(principal: Principal = Depends(caller)):
    return {"username": principal.name, "roles": sorted(principal.roles)}

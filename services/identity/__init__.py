"""Identity: users, roles, API tokens, web sessions and the one authorisation check."""

from services.identity.principal import Principal
from services.identity.roles import PERMISSIONS, ROLES

__all__ = ["PERMISSIONS", "Principal", "ROLES"]

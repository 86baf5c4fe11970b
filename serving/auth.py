"""Who is calling: the caller a request's bearer token belongs to, and what it may see.

The middleware (serving/middleware.py) resolves the token to a :class:`Caller` and puts it in
the ASGI scope's ``state`` under :data:`CALLER_KEY`; endpoints read it with
:func:`caller_of`.  Roles:

* ``coach``: deal scores, coaching, what-if, email sentiment, reps' quota risk and coaching
  (never attrition risk);
* ``manager``: all of that, plus attrition risk of the reps who report to ``manager_id``;
* ``admin``: everything, including attrition risk of every rep and ``POST /admin/reload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spm_ml.tokens import ROLES, Role, TokenRecord

__all__ = ["CALLER_KEY", "ROLES", "Caller", "Role", "caller_of"]

CALLER_KEY = "spm_ml_caller"
"""Key of the :class:`Caller` in the ASGI scope's ``state``."""


@dataclass(frozen=True)
class Caller:
    """The holder of a valid token: its name (never the token), role and manager id."""

    name: str
    role: Role
    manager_id: str | None = None

    def sees_attrition_of(self, rep_manager_id: str | None) -> bool:
        """Whether this caller may see the attrition risk of a rep managed by
        ``rep_manager_id``: admins always, managers for their own reports, coaches never."""
        if self.role == "admin":
            return True
        return (
            self.role == "manager"
            and self.manager_id is not None
            and rep_manager_id == self.manager_id
        )

    @classmethod
    def of(cls, record: TokenRecord) -> Caller:
        """The caller holding the token of a store record."""
        return cls(name=record.name, role=record.role, manager_id=record.manager_id)


def caller_of(context: Any) -> Caller | None:
    """The caller of the request behind a ``bentoml.Context`` (``None`` without one)."""
    state = context.request.scope.get("state") or {}
    return state.get(CALLER_KEY)

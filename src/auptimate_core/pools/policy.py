"""Who may do what in the ledger.

The rules, checked before anything is written (or a repeated request answered):

- a pool is created by its own manager (``actor == pool.manager_id``);
- only the pool's manager admits investors, distributes, charges fees and refunds;
- an investor records only their own investments (``actor == investor_id``);
- an investor is registered by themselves or by the host application (``actor=None``);
- a pool's positions and history are read by its manager and its members, a portfolio by its
  investor; ``actor=None`` on a read means the host application itself, which may read anything.

Every refusal is a :class:`~auptimate_core.errors.PermissionDenied` naming the actor and the
action. Subclass :class:`Policy` and pass it to the ledger to change the rules.

>>> from auptimate_core.domain import Pool
>>> Policy().check_manager(Pool("p1", "m1"), "eve", "distribute")
Traceback (most recent call last):
...
auptimate_core.errors.PermissionDenied: 'eve' may not distribute: only the manager of pool 'p1' may
"""

from __future__ import annotations

from collections.abc import Container

from ..domain import Investor, Pool
from ..errors import PermissionDenied


class Policy:
    """The default rules (see the module notes). Stateless: safe to share between threads."""

    def check_create(self, pool: Pool, actor: str) -> None:
        if actor != pool.manager_id:
            raise PermissionDenied(actor, "create_pool",
                                   f"pool {pool.id!r} must be created by its manager")

    def check_register(self, investor: Investor, actor: str | None) -> None:
        if actor is not None and actor != investor.id:
            raise PermissionDenied(actor, "register_investor",
                                   f"only {investor.id!r} or the host application may")

    def check_manager(self, pool: Pool, actor: str, action: str) -> None:
        if actor != pool.manager_id:
            raise PermissionDenied(actor, action, f"only the manager of pool {pool.id!r} may")

    def check_invest(self, pool: Pool, investor_id: str, actor: str) -> None:
        if actor != investor_id:
            raise PermissionDenied(actor, "invest",
                                   f"only {investor_id!r} may record their own investments")

    def check_read_pool(self, pool: Pool, members: Container[str], actor: str | None,
                        action: str) -> None:
        if actor is None or actor == pool.manager_id or actor in members:
            return
        raise PermissionDenied(actor, action,
                               f"only the manager and members of pool {pool.id!r} may")

    def check_read_investor(self, investor_id: str, actor: str | None, action: str) -> None:
        if actor is not None and actor != investor_id:
            raise PermissionDenied(actor, action, f"only {investor_id!r} may")

    def check_read_all(self, actor: str | None, action: str) -> None:
        if actor is not None:
            raise PermissionDenied(actor, action, "only the host application may read every pool")

"""Who may do what: one table of every route (API and page) × method → the rule it follows.

The API base view (apps.core.api.TenantScopedMixin) and the page decorator
(apps.core.views.org_page) look the rule up for the resolved route and method and refuse a role
below it with 403, naming the role needed. A route missing from the table is refused (403) for
everyone, and tests/apps/core/test_role_matrix.py fails on it: a new route cannot escape.

"Own" rules are checked twice: the view lets members through, and the service, which holds the
object, refuses a member acting on what someone else created (check_may_change). The README's
permission table is generated from this module (scripts/permission_table.py).

Adding a route: one line in PERMISSIONS, e.g.
    "api:invitation-list": {"GET": ADMIN, "POST": ADMIN},
then `python scripts/permission_table.py --write` to update the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from apps.tenants.models import Role

#: roles from least to most powerful; each has every power of the ones before it
ROLES: tuple[str, ...] = (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER)


@dataclass(frozen=True)
class Rule:
    """What a route + method needs.

    `role` is the least role; None means the route is no organization's business (public
    pages, or a person's own account) and the organization's roles do not apply. With `own`, a
    member may act only on objects they created; admins and owners on all. With `hidden`, the
    objects a member may not act on are not even shown to them (answer 404, as missing).
    """

    role: str | None
    own: bool = False
    hidden: bool = False
    #: for routes with no role: "public" (anyone, logged in or not) or "personal" (any
    #: logged-in person, about their own account)
    audience: str = ""

    def allows(self, role: str | None) -> bool:
        """Whether `role` passes the route's check (an own rule's object check comes later)."""
        if self.role is None:
            return True
        return role is not None and Role.at_least(role, self.role)

    def describe(self, role: str) -> str:
        """The README cell for `role`: yes, own, or no."""
        if self.role is None:
            return "✓"
        if not Role.at_least(role, self.role):
            return "—"
        if self.own and not Role.at_least(role, Role.ADMIN):
            return "own"
        return "✓"


#: reads: every role
READ = Rule(Role.VIEWER)
#: creates something that will be the member's own, or uses the organization's (trains on its
#: datasets, deploys and calls its models)
CREATE = Rule(Role.MEMBER)
#: changes or deletes an existing object: members what they created, admins and owners anything
OWN = Rule(Role.MEMBER, own=True)
#: as OWN, but a member does not even see others' objects (API keys)
OWN_HIDDEN = Rule(Role.MEMBER, own=True, hidden=True)
ADMIN = Rule(Role.ADMIN)
OWNER = Rule(Role.OWNER)
#: anyone, logged in or not (sign-up, log-in, password reset, the API schema)
PUBLIC = Rule(None, audience="public")
#: any logged-in person, about their own account (password, sessions); no organization needed
PERSONAL = Rule(None, audience="personal")

#: route name → HTTP method → rule. HEAD follows GET; OPTIONS too, or READ on a route without GET.
PERMISSIONS: dict[str, dict[str, Rule]] = {
    # --- API: accounts and the organization
    "api:signup": {"POST": PUBLIC},
    "api:schema": {"GET": PUBLIC},
    "api:organization": {"GET": READ},
    "api:api-key-list": {"GET": CREATE, "POST": CREATE},
    "api:api-key-detail": {"GET": OWN_HIDDEN, "DELETE": OWN_HIDDEN},
    # --- API: datasets
    "api:dataset-list": {"GET": READ, "POST": CREATE},
    "api:dataset-detail": {"GET": READ, "DELETE": OWN},
    "api:dataset-versions": {"GET": READ, "POST": OWN},
    "api:dataset-leaderboard": {"GET": READ},
    "api:dataset-version-list": {"GET": READ},
    "api:dataset-version-detail": {"GET": READ},
    "api:dataset-version-confirm": {"POST": OWN},
    "api:dataset-version-download": {"GET": READ},
    "api:dataset-version-health": {"GET": READ},
    "api:dataset-version-items": {"GET": READ},
    "api:dataset-version-table": {"GET": READ},
    "api:dataset-item-list": {"GET": READ},
    "api:dataset-item-detail": {"GET": READ},
    "api:dataset-item-image": {"GET": READ},
    "api:dataset-item-thumbnail": {"GET": READ},
    # --- API: models and training
    "api:templates": {"GET": READ},
    "api:model-list": {"GET": READ, "POST": CREATE},
    "api:model-detail": {"GET": READ, "DELETE": OWN},
    "api:model-train": {"POST": OWN},
    "api:model-weights": {"PUT": OWN},
    "api:run-list": {"GET": READ},
    "api:run-detail": {"GET": READ},
    "api:run-cancel": {"POST": OWN},
    "api:run-evaluation": {"GET": READ},
    "api:model-version-list": {"GET": READ},
    "api:model-version-detail": {"GET": READ},
    # --- API: endpoints and usage
    "api:endpoint-list": {"GET": READ, "POST": CREATE},
    "api:endpoint-detail": {"GET": READ, "DELETE": OWN},
    "api:endpoint-predict": {"POST": CREATE},
    "api:usage-list": {"GET": READ},
    "api:usage-detail": {"GET": READ},
    "api:usage-limits": {"GET": READ},
    # --- API: the team (people only: keys are refused by the views)
    "api:organizations": {"GET": READ},
    "api:member-list": {"GET": READ},
    "api:member-detail": {"GET": READ, "PATCH": ADMIN, "DELETE": ADMIN},
    "api:invitation-list": {"GET": ADMIN, "POST": ADMIN},
    "api:invitation-detail": {"GET": ADMIN, "DELETE": ADMIN},
    "api:invitation-resend": {"POST": ADMIN},
    # --- pages: accounts
    "accounts:signup": {"GET": PUBLIC, "POST": PUBLIC},
    "accounts:login": {"GET": PUBLIC, "POST": PUBLIC},
    "accounts:logout": {"POST": PERSONAL},
    "accounts:password_change": {"GET": PERSONAL, "POST": PERSONAL},
    "accounts:password_reset": {"GET": PUBLIC, "POST": PUBLIC},
    "accounts:password_reset_done": {"GET": PUBLIC},
    "accounts:password_reset_confirm": {"GET": PUBLIC, "POST": PUBLIC},
    "accounts:password_reset_complete": {"GET": PUBLIC},
    "accounts:sessions": {"GET": PERSONAL},
    "accounts:sessions_end_others": {"POST": PERSONAL},
    "accounts:api_keys": {"GET": CREATE, "POST": CREATE},
    "accounts:api_key_revoke": {"POST": OWN_HIDDEN},
    "accounts:email_change": {"GET": PERSONAL, "POST": PERSONAL},
    "accounts:email_change_confirm": {"GET": PERSONAL, "POST": PERSONAL},
    "accounts:organization_switch": {"POST": PERSONAL},
    "accounts:organization_create": {"GET": PERSONAL, "POST": PERSONAL},
    # --- pages: the team (the services refuse an admin who would touch an owner)
    "tenants:members": {"GET": READ},
    "tenants:invite": {"POST": ADMIN},
    "tenants:leave": {"POST": READ},
    "tenants:member_role": {"POST": ADMIN},
    "tenants:member_remove": {"POST": ADMIN},
    "tenants:invitation_resend": {"POST": ADMIN},
    "tenants:invitation_revoke": {"POST": ADMIN},
    "invitations:accept": {"GET": PUBLIC, "POST": PUBLIC},
    # --- pages: the organization's work
    "home": {"GET": READ},
    "datasets:list": {"GET": READ, "POST": CREATE},
    "datasets:delete": {"POST": OWN},
    "datasets:version": {"GET": READ},
    "datasets:tabular_confirm": {"POST": OWN},
    "datasets:gallery": {"GET": READ},
    "datasets:download": {"GET": READ},
    "datasets:derive": {"POST": OWN},
    "datasets:item_thumbnail": {"GET": READ},
    "datasets:item_image": {"GET": READ},
    "training:list": {"GET": READ},
    "training:create": {"GET": CREATE, "POST": CREATE},
    "training:run": {"GET": READ},
    "training:cancel": {"POST": OWN},
    "training:retrain": {"POST": OWN},
    "training:delete": {"POST": OWN},
    "training:leaderboard": {"GET": READ},
    "deployments:list": {"GET": READ},
    "deployments:deploy": {"POST": CREATE},
    "deployments:detail": {"GET": READ},
    "deployments:delete": {"POST": OWN},
}

_SAME_AS_GET = ("HEAD", "OPTIONS")


class NotInTable(Exception):
    """The route, or its method, has no rule: refused for everyone until one is added."""

    def __init__(self, route: str | None, method: str, *, route_known: bool) -> None:
        self.route = route
        self.method = method
        self.route_known = route_known
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return _(
            "%(method)s %(route)s is not in the permission table, so it is refused. "
            "A developer adds it to apps/core/permissions.py."
        ) % {"method": self.method, "route": self.route or _("(an unnamed route)")}


def rule_for(route: str | None, method: str) -> Rule:
    """The rule for `method` on the route named `route`; NotInTable when there is none."""
    method = method.upper()
    methods = PERMISSIONS.get(route or "")
    if methods is None:
        raise NotInTable(route, method, route_known=False)
    rule = methods.get("GET" if method in _SAME_AS_GET else method)
    if rule is None and method == "OPTIONS":
        rule = READ  # it only describes the route (DRF's metadata), whatever its methods need
    if rule is None:
        raise NotInTable(route, method, route_known=True)
    return rule


def route_methods(route: str) -> list[str]:
    """The methods the table lists for a route (for a 405's Allow header)."""
    return list(PERMISSIONS.get(route, {}))


def refusal_message(*, needed: str, role: str) -> str:
    """Why a role is refused: "This needs the member role; you are viewer." """
    return _("This needs the %(needed)s role; you are %(role)s.") % {
        "needed": needed,
        "role": role,
    }


def owner_id(obj: Any) -> Any:
    """Who counts as the maker of `obj` for own rules: its `owner_id` where the model defines
    one (a dataset version: its dataset's uploader), else its `created_by_id`."""
    if hasattr(obj, "owner_id"):
        return obj.owner_id
    return getattr(obj, "created_by_id", None)


def may_change(*, role: str | None, user: Any, created_by_id: Any) -> bool:
    """Whether `role` may change or delete an object `created_by_id` made: admins and owners
    anything, members what they created themselves, viewers nothing."""
    if role is None or not Role.at_least(role, Role.MEMBER):
        return False
    if Role.at_least(role, Role.ADMIN):
        return True
    user_id = getattr(user, "pk", None)
    return user_id is not None and created_by_id == user_id

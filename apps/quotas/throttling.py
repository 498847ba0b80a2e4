"""Requests per minute per API key and per organization, on the API and, apart, on predict.

A DRF throttle (REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES), so it runs on every API view after
authentication. Four budgets, each from the organization's limits (apps.quotas.selectors):
API requests per key and per organization, and predict requests per key and per organization;
a predict call counts in the predict budgets only. Calls made with a browser session or HTTP
Basic have no key: they count in the organization's budget.

Windows are fixed: a window opens with the first request counted after the previous one
closed and lasts a minute; the count lives in the shared `throttle` cache (Redis in
production; files under one lock in the embedded default), added with `add` and `incr`, never
read then written, so the limit holds across every gunicorn worker
(apps.accounts.throttling.window_spend). A burst at the end of one window and the start of the
next may therefore pass up to twice the limit within a minute's span. A refused request answers
429 with Retry-After (the seconds until its window closes) and the error shape. Each request
is counted before it is judged, so parallel requests cannot all pass a check that has not
counted them yet.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.accounts.throttling import Rate, window_spend
from apps.quotas.selectors import Limits, organization_limits
from apps.tenants.selectors import organization_for_request

PREDICT_SCOPE = "predict"


class RateLimited(exceptions.Throttled):
    """429 in the API's error shape; DRF's handler writes Retry-After from `wait`."""

    wait: int | None

    def __init__(self, message: str, wait: int) -> None:
        super().__init__(detail=message, code="throttled")
        self.wait = wait


class OrganizationRateThrottle(BaseThrottle):
    """The organization's per-minute limits, per API key and per organization."""

    def allow_request(self, request: Request, view: Any) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return True  # the view refuses it, or lets anyone in (sign-up has its own budget)
        key = request.auth if hasattr(request.auth, "organization") else None
        if key is not None:
            organization = key.organization  # loaded with the key: no query
        else:
            organization, _role = organization_for_request(request)
        if organization is None:
            return True  # no organization: the view says why
        limits = organization_limits(organization)
        predict = _needs_predict_scope(request, view)
        budgets = _budgets(limits, predict=predict, key_id=key.pk if key else None)
        budgets = [(name, limit, who) for name, limit, who in budgets if limit is not None]
        if not budgets:
            return True
        waits = window_spend(
            [
                (f"rate:{name}:{who}:{organization.pk}", Rate(limit=int(limit), window=60))
                for name, limit, who in budgets
            ]
        )
        refused = [(wait, budget) for wait, budget in zip(waits, budgets, strict=True) if wait]
        if not refused:
            return True
        wait, (name, limit, _who) = max(refused, key=lambda pair: pair[0])
        raise RateLimited(_refusal_message(name, int(limit), wait, limits), wait)


def _needs_predict_scope(request: Request, view: Any) -> bool:
    required_scope = getattr(view, "required_scope", None)
    return callable(required_scope) and required_scope(request) == PREDICT_SCOPE


def _budgets(limits: Limits, *, predict: bool, key_id: Any) -> list[tuple[str, int | None, str]]:
    kind = "predict" if predict else "api"
    budgets: list[tuple[str, int | None, str]] = [
        (
            f"{kind}_requests_per_minute_per_organization",
            getattr(limits, f"{kind}_requests_per_minute_per_organization"),
            "organization",
        )
    ]
    if key_id is not None:
        budgets.append(
            (
                f"{kind}_requests_per_minute_per_key",
                getattr(limits, f"{kind}_requests_per_minute_per_key"),
                f"key-{key_id}",
            )
        )
    return budgets


def _refusal_message(name: str, limit: int, wait: int, limits: Limits) -> str:
    per_key = name.endswith("_per_key")
    if name.startswith("predict"):
        what = (
            _("predict requests per minute with one API key")
            if per_key
            else _("predict requests per minute for your organization")
        )
    else:
        what = (
            _("API requests per minute with one API key")
            if per_key
            else _("API requests per minute for your organization")
        )
    if name in limits.overridden:
        message = _("Rate limit reached: %(limit)d %(what)s (set for your organization).") % {
            "limit": limit,
            "what": what,
        }
    else:
        message = _("Rate limit reached: %(limit)d %(what)s (plan %(plan)s).") % {
            "limit": limit,
            "what": what,
            "plan": limits.plan_name,
        }
    message += " " + ngettext(
        "Try again in %(seconds)d second.", "Try again in %(seconds)d seconds.", wait
    ) % {"seconds": wait}
    message += " " + _(
        "Spread your calls out, or have an owner ask the platform's administrators to raise "
        "the limit."
    )
    return message

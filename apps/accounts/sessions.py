"""A user's browser sessions: recorded as they are used, listed with their last activity, and
ended from another one."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import UserSession
from apps.core.client_ip import client_address

#: the key, inside the session's own data, of its UserSession row
SESSION_ROW = "lepton_session_row"
#: when the row was last written (a POSIX time) and under which session key, in the session
SESSION_SEEN = "lepton_session_seen"
SESSION_KEY = "lepton_session_key"
#: a session's last activity is written at most this often, not on every request
TOUCH_EVERY = timedelta(seconds=60)


def _store(session_key: str | None = None) -> SessionBase:
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key)


def user_session_touch(*, request: HttpRequest) -> None:
    """Record that the logged-in user's session was used now (at most once a minute).

    The session's own data says when its row was last written and under which key, so a page
    view between two writes costs no query."""
    session, user = request.session, request.user
    if not user.is_authenticated or not session.session_key:
        return
    now = timezone.now()
    seen = session.get(SESSION_SEEN)
    if (
        session.get(SESSION_ROW)
        and session.get(SESSION_KEY) == session.session_key
        and seen is not None
        and now.timestamp() - seen < TOUCH_EVERY.total_seconds()
    ):
        return
    row_id = session.get(SESSION_ROW)
    row = UserSession.objects.filter(pk=row_id, user=user).first() if row_id else None
    if row is None:
        row = UserSession.objects.create(
            user=user,
            session_key=session.session_key,
            address=client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
        )
        session[SESSION_ROW] = str(row.pk)
    elif row.session_key != session.session_key or now - row.last_seen_at >= TOUCH_EVERY:
        UserSession.objects.filter(pk=row.pk).update(
            session_key=session.session_key, last_seen_at=now, address=client_address(request)
        )
    session[SESSION_KEY] = session.session_key
    session[SESSION_SEEN] = now.timestamp()


def user_session_forget(*, session: SessionBase) -> None:
    """The session was logged out: its row goes with it."""
    if session.get(SESSION_ROW):
        UserSession.objects.filter(pk=session[SESSION_ROW]).delete()


def user_sessions_active(*, user: Any) -> list[UserSession]:
    """The user's sessions that still log them in, most recently used first. Rows of sessions
    that expired or were ended elsewhere are removed on the way."""
    alive: list[UserSession] = []
    gone: list[UserSession] = []
    for row in UserSession.objects.filter(user=user):
        (alive if _store().exists(row.session_key) else gone).append(row)
    UserSession.objects.filter(pk__in=[row.pk for row in gone]).delete()
    return alive


def user_sessions_end_others(*, user: Any, keep: SessionBase) -> int:
    """Log the user out of every session but `keep`; how many were ended."""
    others = UserSession.objects.filter(user=user)
    if keep.get(SESSION_ROW):
        others = others.exclude(pk=keep[SESSION_ROW])
    ended = 0
    for row in others:
        if _store().exists(row.session_key):
            _store(row.session_key).delete()
            ended += 1
    others.delete()
    return ended

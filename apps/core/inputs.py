"""Input no route can store: NUL characters, refused at the door with the field named.

PostgreSQL refuses a NUL character in any text column (a DataError, which would be a 500), and
no name, label or value a person types needs one. Instead of every view and serializer checking
each of its fields, InputGuardMiddleware looks once at everything a request carries that ends
up as text (query parameters, form fields, uploaded file names, JSON strings and keys) before
the view runs, and answers 400 naming the field: the API's error shape under /api/, a 400 page
elsewhere. A DataError safety net alone would hide which field was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.translation import gettext as _

from apps.core.errors import InvalidInput

NUL = "\x00"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def error_body(code: str, message: str, fields: Any = None) -> dict:
    """The API's one error shape: {"error": {"code", "message", "fields"?}}."""
    body: dict = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def nul_message(field: str) -> str:
    return _(
        "The field '%(field)s' contains a NUL character (\\0), which cannot be stored. "
        "Remove it and send the request again."
    ) % {"field": field}


def json_kind(value: Any) -> str:
    """What a JSON value is, in words: 'array', 'string', 'number'..."""
    if isinstance(value, dict):
        return _("object")
    if isinstance(value, list):
        return _("array")
    if isinstance(value, str):
        return _("string")
    if isinstance(value, bool):
        return _("boolean")
    if isinstance(value, int | float):
        return _("number")
    return _("null")


def text_value(data: Any, field: str, default: str = "") -> str:
    """`data[field]` as text, `default` when absent or null.

    A form field is always text; a JSON body may hold a number, a list or an object where a
    name is expected, which would fail deep inside a service. Refused here, naming the field.
    """
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(
            _("'%(field)s' must be text; this is a JSON %(kind)s.")
            % {"field": field, "kind": json_kind(value)},
            field=field,
        )
    return value


def json_nul_field(value: Any, path: str = "") -> str | None:
    """The path ('rows[0].city') of the first key or string in `value` holding a NUL."""
    if isinstance(value, str):
        return (path or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            name = str(key).replace(NUL, "\\0")
            where = f"{path}.{name}" if path else name
            if NUL in str(key):
                return where
            found = json_nul_field(inner, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = json_nul_field(inner, f"{path or 'body'}[{index}]")
            if found:
                return found
    return None


def request_nul_field(request: HttpRequest) -> str | None:
    """The name of the first query parameter, form field, file or JSON value with a NUL."""
    found = _pairs_nul_field(request.GET.lists())
    if found or request.method not in _WRITE_METHODS:
        return found
    content_type = request.content_type or ""
    if content_type in _FORM_TYPES:
        try:
            post, uploads = request.POST, request.FILES
        except (MultiPartParserError, SuspiciousOperation, UnreadablePostError):
            if not request._read_started:  # type: ignore[attr-defined]
                # Refused before a byte was read (a bad boundary, a body over Django's limit):
                # forget the failed parse so the view parses the body itself and words its own
                # 400, as it did before.
                request.__dict__.pop("_post", None)
                request.__dict__.pop("_files", None)
            return None
        found = _pairs_nul_field(post.lists())
        files = ((key, [f.name or "" for f in fs]) for key, fs in uploads.lists())
        return found or _pairs_nul_field(files)
    if is_json(content_type) and _small_enough(request):
        # In valid JSON a NUL can only be written as the escape \u0000 (raw control characters
        # are refused by the parser), so a body without it is not parsed a second time here.
        if b"\\u0000" not in request.body:
            return None
        try:
            return json_nul_field(json.loads(request.body))
        except (ValueError, RecursionError):
            return None  # not JSON (or nested past reading): the view's parser says so, a 400
    return None


class InputGuardMiddleware:
    """Answers 400, naming the field, to a request with a NUL character in its text input.

    It acts in process_view, after CsrfViewMiddleware's own check, so a forged form is still
    refused as forged; the view never sees the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict
    ) -> HttpResponse | None:
        field = request_nul_field(request)
        if field is None:
            return None
        message = nul_message(field)
        if request.path.startswith("/api/"):
            return JsonResponse(error_body("invalid", message, {field: [message]}), status=400)
        return render(request, "core/bad_input.html", {"message": message}, status=400)


def _pairs_nul_field(pairs: Iterable[tuple[str, list[str]]]) -> str | None:
    for key, values in pairs:
        if NUL in key or any(NUL in value for value in values):
            return key.replace(NUL, "\\0")
    return None


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type says JSON (application/json or any +json type)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _small_enough(request: HttpRequest) -> bool:
    # A larger body is the view's to refuse (with its own 413); reading it here would answer
    # Django's generic 400 for it first.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit is None or length <= limit

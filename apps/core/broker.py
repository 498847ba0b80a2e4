"""What the broker still holds: the ids of task messages waiting in (or taken from) its queues.

The reaper (apps.core.job_reaper) asks before it re-sends a queued job, so a job that is merely
waiting behind a backlog is never sent twice. Both transports the portal runs on are read
directly: Celery's filesystem transport (one file per message in the queue folder) and Redis (a
list per queue, plus the hash of messages delivered to a worker and not yet acknowledged).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

#: kombu's Redis transport keeps a list per priority step: "<queue>", "<queue>\x06\x163", ...
_REDIS_PRIORITY_SEPARATOR = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)


def held_task_ids(queues: Iterable[str], *, taken_within: float) -> set[str] | None:
    """Ids of the task messages the broker holds for `queues`.

    A message counts while it waits in a queue, or (Redis) while a worker took it less than
    `taken_within` seconds ago and has not acknowledged it: a worker that took a message long
    ago and never claimed its job has died with it. None means the broker could not be read
    (an unknown transport, an unreachable server): the caller must fall back to time alone.
    """
    url = str(settings.CELERY_BROKER_URL)
    queues = sorted(set(queues))
    try:
        if url.startswith("filesystem://"):
            return _filesystem_ids(queues)
        if url.startswith(("redis://", "rediss://")):
            return _redis_ids(url, queues, taken_within=taken_within)
    except (OSError, ValueError) as exc:
        logger.warning("could not read the broker's queues: %s", exc)
        return None
    except Exception as exc:  # the redis client's own errors (connection, timeout)
        logger.warning("could not read the broker's queues: %s: %s", type(exc).__name__, exc)
        return None
    return None


def _message_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(message, list):  # Redis' unacked hash: [message, exchange, routing key]
        message = message[0] if message else {}
    if isinstance(message, str):
        return _message_id(message)
    headers: Any = message.get("headers") or {}
    return headers.get("id") or (message.get("properties") or {}).get("correlation_id")


def _filesystem_ids(queues: list[str]) -> set[str]:
    # str(): the settings hold a str here, but mypy types the dict by its Redis branch (int)
    folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
    found: set[str] = set()
    suffixes = tuple(f".{queue}.msg" for queue in queues)
    for path in folder.iterdir():
        if not path.name.endswith(suffixes):
            continue
        try:
            raw = path.read_bytes()
        except FileNotFoundError:  # a worker took it while we looked
            continue
        message_id = _message_id(raw)
        if message_id:
            found.add(message_id)
    return found


def _redis_ids(url: str, queues: list[str], *, taken_within: float) -> set[str]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [
            f"{queue}{_REDIS_PRIORITY_SEPARATOR}{step}" if step else queue
            for queue in queues
            for step in (0, *_REDIS_PRIORITY_STEPS)
        ]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.lrange(key, 0, -1)
        found = {m for batch in pipe.execute() for raw in batch if (m := _message_id(raw))}
        # Taken by a worker, not yet acknowledged: counted only while recent (see above).
        # Plain member names (no scores asked for); the stubs return every possible shape.
        recent: list[Any] = client.zrangebyscore(
            "unacked_index", time.time() - taken_within, "+inf"
        )
        if recent:
            for raw in client.hmget("unacked", recent):
                if raw is not None and (message_id := _message_id(raw)):
                    found.add(message_id)
        return found
    finally:
        client.close()

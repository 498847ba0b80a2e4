"""A client polling gunicorn on one keep-alive connection is not cut off between polls."""

import http.client
import time
from urllib.parse import urlparse

import pytest

from lepton_portal.processes import KEEP_ALIVE_SECONDS

pytestmark = pytest.mark.e2e

#: the longest poll interval the README suggests for job status
POLL_SECONDS = 5


def test_a_client_polling_every_few_seconds_keeps_its_connection(embedded_stack):
    assert KEEP_ALIVE_SECONDS > POLL_SECONDS
    url = urlparse(embedded_stack.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        sockets = set()
        for poll in range(3):
            if poll:
                time.sleep(POLL_SECONDS)
            connection.request("GET", "/accounts/login/")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            sockets.add(id(connection.sock))
        assert len(sockets) == 1, "the server closed the connection between polls"
    finally:
        connection.close()

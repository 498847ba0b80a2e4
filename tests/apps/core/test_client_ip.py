"""The client's address: X-Forwarded-For only through the configured number of trusted proxies."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from apps.core.client_ip import client_address

PEER = "203.0.113.9"


def request(forwarded: str | None = None, remote: str = PEER):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_it_ignores_the_header_without_trusted_proxies(settings):
    settings.LEPTON_TRUSTED_PROXIES = 0
    assert client_address(request("1.2.3.4")) == PEER
    assert client_address(request()) == PEER


def test_it_takes_the_address_the_one_proxy_appended(settings):
    settings.LEPTON_TRUSTED_PROXIES = 1
    assert client_address(request("6.6.6.6, 198.51.100.7")) == "198.51.100.7"


def test_it_takes_the_nth_address_from_the_right(settings):
    settings.LEPTON_TRUSTED_PROXIES = 2
    assert client_address(request("6.6.6.6, 198.51.100.7, 10.0.0.2")) == "198.51.100.7"


def test_a_header_shorter_than_the_proxies_falls_back_to_its_leftmost_entry(settings):
    settings.LEPTON_TRUSTED_PROXIES = 3
    assert client_address(request("198.51.100.7, 10.0.0.2")) == "198.51.100.7"


def test_it_uses_the_peer_when_the_header_is_missing_or_no_address(settings):
    settings.LEPTON_TRUSTED_PROXIES = 1
    assert client_address(request()) == PEER
    assert client_address(request("")) == PEER
    assert client_address(request("1.2.3.4, not-an-address")) == PEER


def test_it_writes_ipv6_addresses_one_way(settings):
    settings.LEPTON_TRUSTED_PROXIES = 1
    assert client_address(request("2001:DB8:0:0::1")) == "2001:db8::1"


class StockThrottle(SimpleRateThrottle):
    rate = "1/second"


@pytest.mark.parametrize("proxies", [0, 1, 2, 3])
@pytest.mark.parametrize("forwarded", [None, "198.51.100.7", "6.6.6.6, 198.51.100.7, 10.0.0.2"])
def test_drf_throttles_see_the_same_client(settings, proxies, forwarded):
    settings.LEPTON_TRUSTED_PROXIES = proxies
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"NUM_PROXIES": proxies}
    drf_request = Request(request(forwarded))
    assert StockThrottle().get_ident(drf_request) == client_address(drf_request)


def test_the_settings_keep_drf_on_the_portals_proxy_count():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.LEPTON_TRUSTED_PROXIES

"""The direct transport's TLS setting: httpx's verified default for https; for a plain http
endpoint a context that trusts no root (nothing goes over TLS there, and the default context
costs every command ~35 ms of reading the CA bundle), which fails closed, never open."""

from __future__ import annotations

import ssl

import httpx

from assistsync.api.client import _tls


def test_https_endpoints_verify_with_the_default_roots() -> None:
    assert _tls(httpx.URL("https://api.example.test/v1")) is True


def test_http_endpoints_get_a_context_that_verifies_and_trusts_nothing() -> None:
    context = _tls(httpx.URL("http://127.0.0.1:8080/v1"))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0

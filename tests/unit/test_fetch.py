"""The URL guard, tested by what it decides.

Decisions use a fake resolver: nothing here connects to a private or public address. The fetch
mechanics (redirects, caps, deadline) run against a server on 127.0.0.1 with a policy that admits
loopback only for that server; the production policy refuses loopback (tested first).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oncoserve_runtime import ApiError, fetch_url, is_public_address, plan_fetch

PUBLIC = "93.184.216.34"


def resolver_for(*addresses: str):
    calls = []

    def resolve(host: str, port: int):
        calls.append((host, port))
        return list(addresses)

    resolve.calls = calls
    return resolve


def refusal(url: str, *addresses: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        plan_fetch(url, resolver=resolver_for(*addresses))
    return caught.value


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "10.0.0.5", "172.16.3.4", "192.168.1.1",
        "169.254.169.254",  # EC2/Lambda metadata service
        "fd00:ec2::254",  # IPv6 metadata service
        "fe80::1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "240.0.0.1", "198.18.0.1",
    ],
)
def test_non_public_addresses_are_refused(address):
    err = refusal("http://images.example.test/a.png", address)
    assert (err.status, err.code) == (422, "url_not_allowed")


def test_one_private_answer_among_public_ones_is_enough_to_refuse():
    assert refusal("https://images.example.test/a.png", PUBLIC, "10.1.2.3").code == "url_not_allowed"


def test_public_address_is_allowed_and_pinned_without_connecting():
    resolve = resolver_for(PUBLIC)
    target = plan_fetch("https://Images.Example.test:8443/x/a.png?size=2", resolver=resolve)
    assert (target.host, target.port, target.address, target.path) == (
        "images.example.test", 8443, PUBLIC, "/x/a.png?size=2")
    assert resolve.calls == [("images.example.test", 8443)]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd", "ftp://example.org/a.png", "gopher://example.org/", "data:image/png;base64,AAAA",
        "//example.org/a.png", "http://user:secret@example.org/a.png", "http:///nohost", "http://example.org:99999/",
        "x" * 3000,
    ],
)
def test_bad_urls_are_refused_before_resolving(url):
    resolve = resolver_for(PUBLIC)
    with pytest.raises(ApiError) as caught:
        plan_fetch(url, resolver=resolve)
    assert (caught.value.status, caught.value.code) == (422, "url_not_allowed")
    assert resolve.calls == []


def test_unresolvable_host_is_a_502():
    def fail(host, port):
        raise OSError("no such host")

    with pytest.raises(ApiError) as caught:
        plan_fetch("https://nowhere.example.test/a.png", resolver=fail)
    assert (caught.value.status, caught.value.code) == (502, "url_unreachable")


def test_public_policy_matches_ipaddress_semantics():
    assert is_public_address(ipaddress.ip_address(PUBLIC))
    assert is_public_address(ipaddress.ip_address("2606:4700:4700::1111"))
    assert not is_public_address(ipaddress.ip_address("::ffff:192.168.0.1"))


# ---------------------------------------------------------------------------------------------
# Mechanics against a loopback server (the only address tests ever connect to).
# ---------------------------------------------------------------------------------------------


class _Server(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        if self.path == "/ok.png":
            self._reply(200, b"\x89PNG fake bytes")
        elif self.path == "/big":
            self._reply(200, b"x" * 5000)
        elif self.path == "/big-undeclared":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-ok":
            self._redirect("/ok.png")
        elif self.path == "/loop":
            self._redirect("/loop")
        else:
            self._reply(404, b"nope")

    def _reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the client hanging up on /slow or /big is the point of those tests


@pytest.fixture(scope="module")
def loopback_server():
    server = _QuietServer(("127.0.0.1", 0), _Server)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://local.test:{server.server_address[1]}"
    server.shutdown()


def loopback_only(ip):
    return ip.is_loopback  # test policy: this server, and nothing else, is reachable


def fetch(url, **kwargs):
    options = dict(resolver=lambda host, port: ["127.0.0.1"] if host == "local.test" else ["169.254.169.254"],
                   allow=loopback_only, timeout_s=2.0, max_bytes=1000)
    options.update(kwargs)
    return fetch_url(url, **options)


def fetch_error(url, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fetch(url, **kwargs)
    return caught.value


def test_production_policy_refuses_the_loopback_server(loopback_server):
    with pytest.raises(ApiError) as caught:
        fetch_url(loopback_server + "/ok.png", resolver=lambda h, p: ["127.0.0.1"])
    assert caught.value.code == "url_not_allowed"


def test_fetches_bytes(loopback_server):
    assert fetch(loopback_server + "/ok.png") == b"\x89PNG fake bytes"


def test_follows_a_redirect_and_checks_it_again(loopback_server):
    assert fetch(loopback_server + "/to-ok") == b"\x89PNG fake bytes"
    err = fetch_error(loopback_server + "/to-metadata")
    assert (err.status, err.code) == (422, "url_not_allowed")


def test_redirect_loops_stop(loopback_server):
    assert fetch_error(loopback_server + "/loop").code == "url_too_many_redirects"


@pytest.mark.parametrize("path", ["/big", "/big-undeclared"])
def test_size_cap_applies_with_and_without_content_length(loopback_server, path):
    err = fetch_error(loopback_server + path)
    assert (err.status, err.code) == (413, "url_content_too_large")


def test_a_trickling_server_meets_the_deadline(loopback_server):
    started = time.monotonic()
    err = fetch_error(loopback_server + "/slow", timeout_s=1.0)
    assert (err.status, err.code) == (502, "url_timeout")
    assert time.monotonic() - started < 2.0


def test_non_2xx_is_a_502(loopback_server):
    err = fetch_error(loopback_server + "/missing")
    assert (err.status, err.code) == (502, "url_fetch_failed")


def test_connection_refused_is_a_502():
    err = fetch_error("http://local.test:1/ok.png")
    assert (err.status, err.code) == (502, "url_unreachable")

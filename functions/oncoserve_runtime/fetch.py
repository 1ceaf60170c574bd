"""Fetch an image URL without becoming a proxy into the network Lambda runs in (SSRF guard).

Rules: http/https only, no credentials in the URL; the host is resolved once and *every* address
must be public (no private, loopback, link-local — 169.254.169.254 is the metadata service —
multicast, reserved or carrier-grade NAT); the connection goes to the checked address (no second
DNS answer can swap it, i.e. no rebinding); each redirect is checked again; one deadline covers
the whole fetch; the body is read up to a byte cap and no further.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

from .errors import PayloadTooLargeError, UnprocessableEntityError, UpstreamFetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
AddressPolicy = Callable[[IPAddress], bool]

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_USER_AGENT = "OncoServe/1 (+research use; image fetch)"


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass(frozen=True)
class FetchTarget:
    """A URL that passed the guard, pinned to the address that was checked."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str


def _refuse(message: str) -> UnprocessableEntityError:
    return UnprocessableEntityError("url_not_allowed", message)


def plan_fetch(url: str, *, resolver: Resolver = system_resolver, allow: AddressPolicy = is_public_address) -> FetchTarget:
    """Check ``url`` and resolve its host; decide, without connecting, whether it may be fetched.

    Raises
    ------
    UnprocessableEntityError
        ``url_not_allowed``: bad scheme, credentials, no host, or an address that is not public.
    UpstreamFetchError
        ``url_unreachable``: the host does not resolve.
    """
    if not isinstance(url, str) or len(url) > 2048:
        raise _refuse("The url must be a string of at most 2048 characters.")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(f"Only http and https URLs are fetched, not '{scheme or 'none'}'.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("URLs with credentials are not fetched.")
    host = parts.hostname
    if not host:
        raise _refuse("The URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise _refuse("The URL has an invalid port.")
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    except (OSError, UnicodeError, ValueError):
        raise UpstreamFetchError("url_unreachable", f"The host '{host}' does not resolve.")
    if not addresses:
        raise UpstreamFetchError("url_unreachable", f"The host '{host}' does not resolve.")
    refused = [str(a) for a in addresses if not allow(a)]
    if refused:
        # One private answer is enough to refuse: a mixed answer is how rebinding attacks start.
        raise _refuse(f"The host '{host}' resolves to a non-public address; only public hosts are fetched.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return FetchTarget(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]), path=path)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a pre-checked address, with the original host in the Host header."""

    def __init__(self, target: FetchTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a pre-checked address; the certificate is still verified for the host name."""

    def __init__(self, target: FetchTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UpstreamFetchError("url_timeout", "Fetching the URL took too long.")
    return left


def _read_capped(
    connection: http.client.HTTPConnection, response: http.client.HTTPResponse, max_bytes: int, deadline: float
) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError("url_content_too_large", f"The URL serves more than {max_bytes} bytes.")
    chunks, size = [], 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(_remaining(deadline))  # a trickling server meets the deadline too
        chunk = response.read1(_CHUNK)  # returns what has arrived: the deadline is checked per recv
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError("url_content_too_large", f"The URL serves more than {max_bytes} bytes.")
        chunks.append(chunk)
        _remaining(deadline)


def fetch_url(
    url: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = system_resolver,
    allow: AddressPolicy = is_public_address,
) -> bytes:
    """GET ``url`` under the rules in this module's docstring and return the body.

    Raises
    ------
    UnprocessableEntityError
        ``url_not_allowed`` (also for a redirect to a refused address).
    PayloadTooLargeError
        ``url_content_too_large``.
    UpstreamFetchError
        ``url_unreachable``, ``url_timeout``, ``url_fetch_failed`` (non-2xx) or ``url_too_many_redirects``.
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(max_redirects + 1):
        target = plan_fetch(url, resolver=resolver, allow=allow)
        connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(target, timeout=_remaining(deadline))
        try:
            connection.request("GET", target.path, headers={"User-Agent": _USER_AGENT, "Accept": "image/*"})
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise UpstreamFetchError("url_fetch_failed", "The URL redirected without a Location.")
                url = urljoin(target.url, location)
                continue
            if not 200 <= response.status < 300:
                raise UpstreamFetchError("url_fetch_failed", f"The URL answered HTTP {response.status}.")
            return _read_capped(connection, response, max_bytes, deadline)
        except (socket.timeout, TimeoutError):
            raise UpstreamFetchError("url_timeout", "Fetching the URL took too long.")
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamFetchError("url_unreachable", f"The URL could not be fetched: {type(exc).__name__}.")
        finally:
            connection.close()
    raise UpstreamFetchError("url_too_many_redirects", f"The URL redirected more than {max_redirects} times.")

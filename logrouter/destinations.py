"""Where drains may deliver: never to this router's own listeners, never into denied networks.

A drain pointing back at the router's own ``/logs`` (or syslog port) with the
channel's token feeds every line back into the same channel: one line becomes
an endless stream. And a router that delivers anywhere it is told can be used to
reach internal services (cloud metadata at 169.254.169.254, admin ports on
loopback). :class:`DestinationPolicy` answers both:

* an address on this host (loopback, the unspecified address, or any address a
  local socket can bind) with a port one of this node's listeners uses is refused;
* an address inside ``drain_deny_networks`` (CIDRs; empty by default, as Logplex)
  is refused.

Checked twice: on input, for hosts given as IP literals or ``localhost`` (a 422
before anything is stored), and on every connect, after DNS resolution, on the
addresses actually dialled (so a name that resolves to a denied address, now or
after a DNS change, is refused too).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass, field

import trio

from logrouter.errors import DestinationRefused

__all__ = ["DestinationPolicy", "parse_networks"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, ::1"`` → networks (a bare address is a /32 or /128).

    Raises:
        ValueError: an entry is not an address or a network.
    """
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


@functools.lru_cache(maxsize=1024)
def _is_local(addr: IPAddress) -> bool:
    """The address belongs to this host (a socket can bind it)."""
    if addr.is_loopback or addr.is_unspecified:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(addr), 0))
    except OSError:
        return False
    return True


def _address(text: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Which addresses drains may connect to.

    Args:
        deny: networks no drain may reach.
        own_ports: ports this node listens on (a local address with one of them is
            the router itself).
    """

    deny: tuple[IPNetwork, ...] = ()
    own_ports: frozenset[int] = field(default_factory=frozenset)

    def refusal(self, ip: str, port: int) -> str | None:
        """Why ``ip:port`` may not be reached, or None when it may."""
        addr = _address(ip)
        if addr is None:
            return None
        if port in self.own_ports and _is_local(addr):
            return f"{ip}:{port} is this router's own listener (a drain there would loop)"
        for net in self.deny:
            if addr.version == net.version and addr in net:
                return f"{ip} is in a denied network ({net}, drain_deny_networks)"
        return None

    def check_host(self, host: str, port: int) -> str | None:
        """:meth:`refusal` for a host known without DNS (an IP literal or ``localhost``)."""
        if host.lower().rstrip(".") == "localhost":
            return self.refusal("127.0.0.1", port) or self.refusal("::1", port)
        return self.refusal(host, port)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a drain may dial, in resolver order.

        Raises:
            OSError: the name does not resolve.
            DestinationRefused: every address it resolves to is refused.
        """
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except UnicodeError as exc:  # a name the IDNA codec rejects
            raise OSError(f"cannot resolve {host!r}: {exc}") from None
        allowed: list[str] = []
        reason = ""
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = str(sockaddr[0])
            problem = self.refusal(ip, port)
            if problem is None:
                if ip not in allowed:
                    allowed.append(ip)
            else:
                reason = problem
        if not allowed:
            raise DestinationRefused(reason or f"{host} has no address")
        return allowed

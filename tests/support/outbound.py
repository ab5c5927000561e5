"""The outbound policy tests use where servers listen on loopback: loopback allowed, every
other refused range (169.254.169.254, 10/8, …) still refused."""

from __future__ import annotations

from providers.outbound import OutboundPolicy

LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"
LOOPBACK = OutboundPolicy.allowing(LOOPBACK_NETWORKS.split(","))

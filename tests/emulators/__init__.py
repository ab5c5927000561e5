"""HTTP-level emulators of SaaS calendar upstreams (ARCHITECTURE.md s6): real servers on
loopback, speaking the documented wire format, keeping state, so the real client libraries
run against them unmodified."""

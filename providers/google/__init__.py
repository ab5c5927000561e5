"""The Google Calendar provider (google-api-python-client + google-auth, ARCHITECTURE.md s5):
``provider`` implements the Protocol, ``oauth`` holds the upstream consent helpers and the
one scope table, ``client`` the wire calls, ``mapping`` the pure conversions, ``sync`` the
cursor and the change grouping, ``errors`` the upstream error table, ``retry`` the backoff."""

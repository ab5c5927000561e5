"""Read-only iCalendar feeds (ICS / webcal subscriptions) fetched over HTTP(S).

``client.py`` fetches a feed (conditional GET, gzip, size cap), ``guard.py`` keeps those
fetches off private networks (SSRF), ``expansion.py`` and ``mapping.py`` turn the feed into
normalised events, ``cursor.py`` is the sync state and ``provider.py`` the
:class:`providers.protocol.CalendarProvider`.
"""

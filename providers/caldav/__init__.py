"""CalDAV provider (iCloud, Fastmail, Nextcloud and any RFC 4791 server).

``client`` makes the wire calls, ``mapping`` converts iCalendar to and from the model,
``sync`` learns what changed, ``provider`` implements the CalendarProvider Protocol and
``errors`` maps upstream failures onto the provider error tree. The registry imports
``provider`` lazily; importing this package loads nothing else.
"""

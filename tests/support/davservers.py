"""Throwaway CalDAV servers (Radicale, Xandikos) as subprocesses on free loopback ports.

Each server gets a temporary folder of its own, with ``HOME`` and the ``XDG_*`` folders
pointed into it so neither reads nor writes the developer's files, and is stopped by its
own PID (``tests.support.processes.stop_process``).

    with RadicaleServer(users={"alice": "secret"}) as srv:   # htpasswd, plain passwords
        srv.url                                             # http://127.0.0.1:PORT/
    with XandikosServer() as srv:                          # no auth, principal /user/
        srv.url                                             # http://127.0.0.1:PORT/user/
    with XandikosServer(tls_users={"alice": "secret"}) as srv:  # HTTPS + Basic auth
        srv.url, srv.ca_file                                # https://localhost:PORT/user/

:func:`shared_radicale` and :func:`shared_xandikos` give one server of each kind per test
process (started on first use, stopped when the process exits), so contract tests can use a
fresh calendar each instead of a fresh server each.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import caldav

from tests.support.processes import free_port, stop_process
from tests.support.waiting import Deadline

__all__ = ["DavOwner", "RadicaleServer", "XandikosServer", "shared_radicale", "shared_xandikos"]


class _DavServer:
    """The common life cycle: temp folder, spawn, wait until it answers, stop by PID."""

    name = "dav"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path()
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and storage into ``self.dir`` before the server starts."""

    def ssl_context(self) -> ssl.SSLContext | None:
        return None

    def start(self, timeout: float = 30.0) -> _DavServer:
        self.dir = Path(tempfile.mkdtemp(prefix=f"calgate-{self.name}-"))
        self.prepare()
        return self._launch(timeout)

    def outage(self) -> None:
        """Stop the server (by its PID) but keep its storage and port: an upstream outage."""
        proc, self._proc = self._proc, None
        stop_process(proc)

    def recover(self, timeout: float = 30.0) -> None:
        """Start again on the same port and storage after :meth:`outage`."""
        self._launch(timeout)

    def _launch(self, timeout: float) -> _DavServer:
        env = dict(os.environ, HOME=str(self.dir), XDG_DATA_HOME=str(self.dir / "data-home"),
                   XDG_CONFIG_HOME=str(self.dir / "config-home"),
                   XDG_CACHE_HOME=str(self.dir / "cache-home"),
                   XDG_STATE_HOME=str(self.dir / "state-home"))
        began = time.perf_counter()
        with open(self.dir / "server.log", "ab") as log:
            self._proc = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began
        return self

    def _answers(self) -> bool:
        try:
            context = self.ssl_context()
        except (OSError, ssl.SSLError):  # the self-signed certificate is not written yet
            return False
        request = urllib.request.Request(self.base + "/", method="OPTIONS")
        try:
            with urllib.request.urlopen(request, timeout=1, context=context):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer (401, 405, ...) means it is listening
        except OSError:
            return False

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = Deadline(timeout)
        while not self._answers():
            if self._proc.poll() is not None:
                log = (self.dir / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self._proc.returncode}: {log}")
            if deadline.passed():
                raise TimeoutError(f"{self.name} on port {self.port} did not answer")
            time.sleep(0.03)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        if self.dir != Path():
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> _DavServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class RadicaleServer(_DavServer):
    """Radicale with htpasswd users (plain passwords) and no login delay.

    ``rights`` is the text of a ``from_file`` rights file; ``collections`` maps a
    collection path (``"alice/shared"``) to the properties Radicale stores for it, so a
    calendar can exist before the server starts (e.g. one the rights make read-only);
    ``items`` maps a collection path to the (file name, iCalendar text) items written into
    it before the server starts (thousands of events without thousands of PUTs).
    """

    name = "radicale"

    def __init__(self, users: Mapping[str, str], rights: str | None = None,
                 collections: Mapping[str, Mapping[str, str]] | None = None,
                 items: Mapping[str, list[tuple[str, str]]] | None = None) -> None:
        super().__init__()
        self.users = dict(users)
        self.rights = rights
        self.collections = dict(collections or {})
        self.items = dict(items or {})

    @property
    def url(self) -> str:
        return self.base + "/"

    def prepare(self) -> None:
        (self.dir / "users").write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        if self.rights is not None:
            (self.dir / "rights").write_text(self.rights)
        root = self.dir / "collections" / "collection-root"
        for path, props in self.collections.items():
            folder = root / path
            folder.mkdir(parents=True)
            (folder / ".Radicale.props").write_text(json.dumps(dict(props)))
        for path, written in self.items.items():
            for name, text in written:
                (root / path / name).write_bytes(text.encode())

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "radicale",
                   "--config", "",  # read no system-wide or per-user config file
                   "--server-hosts", f"127.0.0.1:{self.port}",
                   "--storage-filesystem-folder", str(self.dir / "collections"),
                   "--auth-type", "htpasswd",
                   "--auth-htpasswd-filename", str(self.dir / "users"),
                   "--auth-htpasswd-encryption", "plain",
                   "--auth-delay", "0",  # the default delays every failed login ~1.5 s
                   "--logging-level", "warning"]
        if self.rights is not None:
            command += ["--rights-type", "from_file", "--rights-file", str(self.dir / "rights")]
        return command


class XandikosServer(_DavServer):
    """Xandikos with the default calendar under ``/user/``.

    Without ``tls_users`` it serves plain HTTP without authentication. With them it serves
    HTTPS (``--autocert``: a self-signed certificate for ``localhost``, in ``ca_file``)
    and Basic auth, since Xandikos refuses ``--htpasswd`` over plain HTTP.
    """

    name = "xandikos"

    def __init__(self, tls_users: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.tls_users = dict(tls_users or {})

    @property
    def base(self) -> str:
        if self.tls_users:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/user/"

    @property
    def ca_file(self) -> Path:
        return self.dir / "state" / "certs" / "selfsigned.crt"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls_users:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def prepare(self) -> None:
        # Xandikos takes {SHA} or bcrypt entries, never plain text.
        lines = [f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(pw.encode()).digest()).decode()}\n"
                 for user, pw in self.tls_users.items()]
        (self.dir / "htpasswd").write_text("".join(lines))

    def command(self) -> list[str]:
        command = [str(Path(sys.executable).with_name("xandikos")), "serve",
                   "-d", str(self.dir / "data"), "--defaults",
                   "--current-user-principal", "/user/",
                   "--state-dir", str(self.dir / "state"),
                   "--no-detect-systemd",
                   "-l", "localhost" if self.tls_users else "127.0.0.1", "-p", str(self.port)]
        if self.tls_users:
            command += ["--autocert", "--htpasswd", str(self.dir / "htpasswd")]
        return command


_shared: dict[str, _DavServer] = {}
_shared_lock = threading.Lock()
SHARED_USERS = {"alice": "secret"}


def _shared_server(kind: str) -> _DavServer:
    with _shared_lock:
        server = _shared.get(kind)
        if server is None:
            server = (RadicaleServer(SHARED_USERS) if kind == "radicale"
                      else XandikosServer()).start()
            _shared[kind] = server
            atexit.register(server.stop)  # stopped by PID when the test process exits
        return server


def shared_radicale() -> RadicaleServer:
    """One Radicale per test process (user ``alice``/``secret``), started on first use."""
    server = _shared_server("radicale")
    assert isinstance(server, RadicaleServer)
    return server


def shared_xandikos() -> XandikosServer:
    """One plain-HTTP Xandikos per test process, started on first use."""
    server = _shared_server("xandikos")
    assert isinstance(server, XandikosServer)
    return server


# -- the calendar's owner, editing upstream with the plain caldav library ---------------

BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def berlin(moment: datetime) -> str:
    """A UTC moment as Europe/Berlin wall-clock text (for TZID=Europe/Berlin values)."""
    return moment.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y%m%dT%H%M%S")


def vcalendar(*components: str, timezone: bool = True) -> str:
    body = (BERLIN_VTIMEZONE if timezone else "") + "".join(components)
    head = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Calgate tests//Owner//EN\n"
    return f"{head}{body}END:VCALENDAR\n"


def single_event(uid: str, summary: str, start: datetime, duration: timedelta,
                 transparent: bool = False, extra: str = "") -> str:
    """A VEVENT in Europe/Berlin time, as a desktop client would write it."""
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n"
            f"DTSTART;TZID=Europe/Berlin:{berlin(start)}\n"
            f"DTEND;TZID=Europe/Berlin:{berlin(start + duration)}\n"
            f"SUMMARY:{summary}\nTRANSP:{'TRANSPARENT' if transparent else 'OPAQUE'}\n"
            f"{extra}END:VEVENT\n")


def weekly_series(uid: str) -> str:
    """tests/contract/harness.py's series: Mondays 09:00 Berlin from 2027-03-01, without
    2027-03-08, the 2027-03-22 instance moved to 14:00."""
    master = ("BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n"
              "DTSTART;TZID=Europe/Berlin:20270301T090000\n"
              "DTEND;TZID=Europe/Berlin:20270301T100000\n"
              "RRULE:FREQ=WEEKLY;BYDAY=MO\nEXDATE;TZID=Europe/Berlin:20270308T090000\n"
              "SUMMARY:Weekly\nEND:VEVENT\n")
    moved = ("BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n"
             "RECURRENCE-ID;TZID=Europe/Berlin:20270322T090000\n"
             "DTSTART;TZID=Europe/Berlin:20270322T140000\n"
             "DTEND;TZID=Europe/Berlin:20270322T150000\n"
             "SUMMARY:Weekly\nEND:VEVENT\n")
    return vcalendar(master.format(uid=uid), moved.format(uid=uid))


class DavOwner:
    """The account's owner acting straight on the server with the plain caldav library,
    behind the provider's back (as Apple Calendar or Thunderbird would)."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None) -> None:
        self.client = caldav.DAVClient(url, username=username, password=password,
                                       ssl_verify_cert=ca_file or True)
        self.principal = self.client.principal()

    def make_calendar(self, name: str = "Calgate test") -> str:
        """A fresh calendar; returns its path, unquoted: the provider's calendar id."""
        calendar = self.principal.make_calendar(name=name, cal_id=uuid.uuid4().hex)
        return unquote(urlsplit(str(calendar.url)).path)

    def calendar(self, path: str) -> caldav.Calendar:
        return self.client.calendar(url=urljoin(str(self.client.url), quote(path)))

    def put(self, path: str, ics: str) -> None:
        self.calendar(path).add_event(ics)

    def add(self, path: str, uid: str, summary: str, start: datetime,
            duration: timedelta = timedelta(hours=1), transparent: bool = False,
            extra: str = "") -> None:
        self.put(path, vcalendar(single_event(uid, summary, start, duration, transparent,
                                              extra)))

    def rename(self, path: str, uid: str, summary: str) -> None:
        event = self.calendar(path).get_event_by_uid(uid)
        event.icalendar_component["SUMMARY"] = summary
        event.save()

    def remove(self, path: str, uid: str) -> None:
        self.calendar(path).get_event_by_uid(uid).delete()

    def raw(self, path: str, uid: str) -> str:
        return str(self.calendar(path).get_event_by_uid(uid).data)

    def delete_calendar(self, path: str) -> None:
        self.calendar(path).delete()

    def close(self) -> None:
        self.client.close()

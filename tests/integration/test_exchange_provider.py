"""EwsProvider against the Exchange emulator, driven through exchangelib unmodified: NTLM
(pyspnego's acceptor) over HTTPS with a private CA named by the operator's CA bundle,
calendars, SyncFolderItems sync with an expiring state, idempotent managed writes after a
lost answer, ChangeKey conflicts, free/busy, and each linking failure with its own words."""

from __future__ import annotations

import datetime as dt
import gc
import os
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.services.connectors import FormConnector
from gateway.services.linking import VerificationFailed
from providers.errors import (
    CertificateInvalid,
    CursorExpired,
    Unauthorized,
    Unreachable,
)
from providers.exchange import linking
from providers.exchange.config import ExchangeSettings
from providers.exchange.errors import AccountLocked, EwsDisabled, ExchangeOnline
from providers.exchange.provider import EwsProvider, open_account
from providers.model import EventDraft, Person, TimeWindow
from providers.outbound import BlockedAddress, OutboundPolicy
from providers.registry import ProviderOptions, get_entry
from tests.emulators.exchange import ExchangeEmulator
from tests.support import aio

UTC = dt.UTC
ALICE = "alice@contoso.test"
HOST = "mail.contoso.test"
WINDOW = TimeWindow(dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2027, 3, 1, tzinfo=UTC))
# Where Autodiscover finds contoso.test on 443: a loopback address per xdist worker, so two
# workers running the autodiscover tests at once do not compete for one address.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
AUTODISCOVER_AT = f"127.0.3.{_WORKER + 1}"
NAMES = {HOST: ["127.0.0.1"], "contoso.test": [AUTODISCOVER_AT],
         "autodiscover.contoso.test": [AUTODISCOVER_AT], "online.contoso.test": ["127.0.0.1"],
         "meta.contoso.test": ["169.254.169.254"]}


def _resolve(host: str, port: int) -> list[str]:
    return NAMES.get(host, [])




@pytest.fixture(autouse=True)
def _collect_abandoned_responses() -> Iterator[None]:
    # exchangelib raises on a 401 or 403 without closing the response it got, so the
    # socket's descriptor is freed only when the garbage collector finds the response
    # (socket.close() waits for the response's file). Collect it here, where that is known
    # to be the cause, rather than let the warning land on whichever test comes next (or
    # mid-test, wherever an automatic collection happens to run: it is held back meanwhile).
    # Before the test as well: a failure's response can outlive its test (pytest holds the
    # exception until the next test starts), so the collection after it may not free it.
    _collect_quietly()
    gc.disable()
    try:
        yield
    finally:
        _collect_quietly()
        gc.enable()


def _collect_quietly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

POLICY = OutboundPolicy.allowing(["127.0.0.0/8"], resolver=_resolve)


@pytest.fixture(scope="module")
def emulator() -> Iterator[ExchangeEmulator]:
    emu = ExchangeEmulator(names=(HOST,)).start()
    emu.add_user(ALICE, "Passw0rd!")
    emu.add_user("carol@contoso.test", "Passw0rd!", ews_enabled=False)
    emu.add_user("lou@contoso.test", "Passw0rd!", locked=True)
    emu.add_calendar(ALICE, "Team")
    emu.add_calendar(ALICE, "Holidays", writable=False)
    yield emu
    emu.stop()


def _options(emu: ExchangeEmulator, ca: bool = True) -> ProviderOptions:
    settings = ExchangeSettings(ca_bundle=emu.ca.pem_path if ca else None)
    return ProviderOptions(outbound=POLICY, settings={"exchange": settings})


def _open(emu: ExchangeEmulator, ca: bool = True, **credentials: str) -> EwsProvider:
    values = {"email": ALICE, "password": "Passw0rd!", "login": "CONTOSO\\alice",
              "ews_url": emu.ews_url(HOST), **credentials}
    return open_account(values, _options(emu, ca))


def _with(emu: ExchangeEmulator, work: Any, **credentials: str) -> Any:
    async def main() -> Any:
        provider = _open(emu, **credentials)
        try:
            return await work(provider)
        finally:
            await provider.close()

    try:
        return aio.run(main())
    finally:
        # After each call too, not only after the test: a test making several calls must
        # not meet an earlier call's abandoned response when the collector next runs.
        _collect_quietly()


def _draft(key: str, summary: str = "Planning", **extra: Any) -> EventDraft:
    return EventDraft(key, summary, dt.datetime(2027, 1, 5, 9, tzinfo=UTC),
                      dt.datetime(2027, 1, 5, 10, tzinfo=UTC), start_tzid="Europe/Berlin",
                      end_tzid="Europe/Berlin", **extra)


def _primary(emu: ExchangeEmulator) -> str:
    return emu.mailbox(ALICE).calendar.folder_id


def test_calendars_are_the_default_and_its_sub_calendars_with_rights(emulator) -> None:
    handshakes = emulator.auth.handshakes
    calendars = _with(emulator, lambda p: p.list_calendars())
    assert [(c.name, c.primary, c.readonly) for c in calendars] == [
        ("Calendar", True, False), ("Team", False, False), ("Holidays", False, True)]
    assert emulator.auth.handshakes == handshakes + 1  # one NTLM handshake, one connection


def test_basic_auth_also_signs_in(emulator) -> None:
    info = _with(emulator, lambda p: p.verify(), auth="basic")
    assert info.upstream_id == ALICE


def test_sync_is_full_then_incremental_and_an_expired_state_says_so(emulator) -> None:
    calendar = emulator.add_calendar(ALICE, "Sync")

    async def work(provider: EwsProvider) -> None:
        first = await provider.put_event(calendar.folder_id, _draft("s1"), None, None)
        second = await provider.put_event(calendar.folder_id, _draft("s2", "Review"),
                                          None, None)
        full = await provider.sync(calendar.folder_id, None, WINDOW)
        assert full.full and set(full.changed) == {first.resource_id, second.resource_id}
        event = full.changed[first.resource_id][0]
        assert (event.summary, event.managed_key, event.start_tzid) == (
            "Planning", "s1", "Europe/Berlin")
        assert event.start == dt.datetime(2027, 1, 5, 9, tzinfo=UTC)
        emulator.edit(ALICE, first.resource_id, Subject="Moved in Outlook")
        await provider.delete_event(calendar.folder_id, second.resource_id, None)
        assert full.cursor is not None
        changes = await provider.sync(calendar.folder_id, full.cursor, WINDOW)
        assert not changes.full
        assert [e.summary for e in changes.changed[first.resource_id]] == ["Moved in Outlook"]
        assert changes.deleted == (second.resource_id,)
        emulator.mailbox(ALICE).expire_states()
        with pytest.raises(CursorExpired):
            await provider.sync(calendar.folder_id, changes.cursor, WINDOW)
        again = await provider.sync(calendar.folder_id, None, WINDOW)
        assert again.full and set(again.changed) == {first.resource_id}

    _with(emulator, work)


def test_a_create_whose_answer_was_lost_is_found_again_not_duplicated(emulator) -> None:
    calendar = emulator.add_calendar(ALICE, "Idempotent")
    draft = _draft("lost-answer", attendees=(Person("bob@contoso.test"),))
    emulator.drop_next("CreateItem")

    async def work(provider: EwsProvider) -> Any:
        # The answer never came (the connection closed): the provider tries again, and
        # so may the outbox later; both find the item by its key.
        first = await provider.put_event(calendar.folder_id, draft, None, None)
        again = await provider.put_event(calendar.folder_id, draft, None, None)
        assert again.resource_id == first.resource_id
        return first

    written = _with(emulator, work)
    items = emulator.items(ALICE, calendar)
    assert [i.item_id for i in items] == [written.resource_id]


def test_an_update_retries_a_change_key_conflict(emulator) -> None:
    calendar = emulator.add_calendar(ALICE, "Conflicts")

    async def work(provider: EwsProvider) -> Any:
        created = await provider.put_event(calendar.folder_id, _draft("c1"), None, None)
        emulator.fail_next("UpdateItem", "ErrorIrresolvableConflict")
        return await provider.put_event(calendar.folder_id, _draft("c1", "Renamed"),
                                        created.resource_id, created.etag)

    before = emulator.operations.count("UpdateItem")
    written = _with(emulator, work)
    (item,) = emulator.items(ALICE, calendar)
    assert (item.item_id, item.text("Subject"), item.change_key) == (
        written.resource_id, "Renamed", written.etag)
    assert emulator.operations.count("UpdateItem") == before + 2


def test_deleting_twice_is_fine(emulator) -> None:
    calendar = emulator.add_calendar(ALICE, "Deletes")

    async def work(provider: EwsProvider) -> None:
        written = await provider.put_event(calendar.folder_id, _draft("d1"), None, None)
        await provider.delete_event(calendar.folder_id, written.resource_id, None)
        await provider.delete_event(calendar.folder_id, written.resource_id, None)

    _with(emulator, work)
    assert emulator.items(ALICE, calendar) == []


def test_free_busy_of_the_default_calendar_comes_from_get_user_availability(emulator) -> None:
    async def work(provider: EwsProvider) -> Any:
        written = await provider.put_event(_primary(emulator), _draft("fb1"), None, None)
        window = TimeWindow(dt.datetime(2027, 1, 5, tzinfo=UTC),
                            dt.datetime(2027, 1, 6, tzinfo=UTC))
        blocks = await provider.free_busy([_primary(emulator)], window)
        await provider.delete_event(_primary(emulator), written.resource_id, None)
        return blocks

    before = emulator.operations.count("GetUserAvailability")
    blocks = _with(emulator, work)
    assert [(b.start.hour, b.end.hour, b.status) for _, b in blocks] == [(9, 10, "busy")]
    assert emulator.operations.count("GetUserAvailability") == before + 1


@pytest.mark.parametrize(("credentials", "ca", "error"), [
    ({"password": "wrong"}, True, Unauthorized),
    ({"email": "lou@contoso.test", "login": "CONTOSO\\lou"}, True, AccountLocked),
    ({"email": "carol@contoso.test", "login": "CONTOSO\\carol"}, True, EwsDisabled),
    ({}, False, CertificateInvalid),
    ({"ews_url": "https://meta.contoso.test/EWS/Exchange.asmx"}, True, BlockedAddress),
    ({"ews_url": "https://outlook.office365.com/EWS/Exchange.asmx"}, True, ExchangeOnline),
], ids=["wrong-password", "locked", "ews-disabled", "private-ca-not-trusted", "blocked",
         "online"])
def test_each_failure_is_its_own_error(emulator, credentials, ca, error) -> None:
    async def main() -> None:
        provider = _open(emulator, ca, **credentials)
        try:
            await provider.verify()
        finally:
            await provider.close()

    with pytest.raises(error):
        aio.run(main())


def test_an_unreachable_server_is_unreachable(emulator) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
        url = f"https://{HOST}:{closed.getsockname()[1]}/EWS/Exchange.asmx"
        with pytest.raises(Unreachable):
            _with(emulator, lambda p: p.verify(), ews_url=url)


@pytest.mark.parametrize(("values", "words"), [
    ({"password": "wrong"}, linking.REFUSED),
    ({"email": "carol@contoso.test", "login": "CONTOSO\\carol"}, linking.EWS_DISABLED),
    ({"ews_url": "https://outlook.office365.com/EWS/Exchange.asmx"}, linking.ONLINE),
    ({"ews_url": "https://meta.contoso.test/EWS/Exchange.asmx"}, linking.BLOCKED),
], ids=["wrong-password", "ews-disabled", "online", "blocked"])
def test_the_form_says_what_went_wrong(emulator, values, words) -> None:
    entry = get_entry("exchange")
    connector = FormConnector(entry, entry.form(), _options(emulator))
    form = {"email": ALICE, "password": "Passw0rd!", "login": "CONTOSO\\alice",
            "ews_url": emulator.ews_url(HOST), **values}
    with pytest.raises(VerificationFailed) as failed:
        aio.in_thread(connector.verify, form)
    assert str(failed.value) == words


@pytest.mark.parametrize("pox", [True, False], ids=["pox", "soap"])
def test_the_form_links_with_autodiscover_and_ntlm_from_email_and_password(pox) -> None:
    """POX first; a server whose POX endpoint is off is found through its SOAP endpoint
    (GetUserSettings) on the same host."""
    try:  # Autodiscover asks https://contoso.test/ on 443: a loopback address of its own
        emu = ExchangeEmulator(names=("contoso.test", "autodiscover.contoso.test"),
                               bind=(AUTODISCOVER_AT, 443)).start()
    except OSError as exc:
        pytest.skip(f"cannot listen on {AUTODISCOVER_AT}:443 here ({exc})")
    try:
        emu.pox_enabled = pox
        email = "dana@contoso.test" if pox else "sol@contoso.test"  # each autodiscovered
        emu.add_user(email, "S3cret!")
        entry = get_entry("exchange")
        connector = FormConnector(entry, entry.form(), _options(emu))
        account = aio.in_thread(connector.verify,
                                {"email": email, "password": "S3cret!"})
        assert account.upstream_id == email
        assert account.credentials == {"email": email, "password": "S3cret!",
                                       "ews_url": "", "login": ""}
        # The connection check, then the calendar list read while linking (so the first
        # GET /v1/calendars after the code is complete): folders only, no item is read.
        assert emu.operations[:2] == ["GetFolder", "GetFolder"]
        assert set(emu.operations) <= {"GetFolder", "FindFolder"}
        assert [c.name for c in account.calendars or ()] == ["Calendar"]
        assert emu.autodiscover_asked == (["/autodiscover/autodiscover.xml"] if pox else [
            "/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.svc"])
    finally:
        emu.stop()


def _invited(emulator: ExchangeEmulator, item_id: str) -> None:
    emulator.invite(ALICE, item_id, "bob@contoso.test", Subject="Review",
                    Start="2027-01-12T09:00:00Z", End="2027-01-12T10:00:00Z",
                    LegacyFreeBusyStatus="Tentative")


@pytest.mark.parametrize(("status", "response"), [
    ("accepted", "AcceptItem"), ("tentative", "TentativelyAcceptItem")])
def test_an_invitation_is_answered_with_a_meeting_response(emulator, status,
                                                           response) -> None:
    item_id = f"invite-{status}"
    _invited(emulator, item_id)

    async def work(provider: EwsProvider) -> Any:
        calendar = _primary(emulator)
        before = await provider.sync(calendar, None, WINDOW)
        await provider.set_participation(calendar, item_id, None, status)
        return before, await provider.sync(calendar, before.cursor, WINDOW)

    before, after = _with(emulator, work)
    assert [e.participation_status for e in before.changed[item_id]] == ["needs_action"]
    assert [e.participation_status for e in after.changed[item_id]] == [status]
    assert (response, item_id) in emulator.mailbox(ALICE).responses
    assert EwsProvider.capabilities.participation_status


def test_a_declined_invitation_leaves_the_calendar(emulator) -> None:
    _invited(emulator, "invite-declined")

    async def work(provider: EwsProvider) -> Any:
        calendar = _primary(emulator)
        before = await provider.sync(calendar, None, WINDOW)
        await provider.set_participation(calendar, "invite-declined", None, "declined")
        return await provider.sync(calendar, before.cursor, WINDOW)

    after = _with(emulator, work)
    assert "invite-declined" in after.deleted  # Exchange moves it to Deleted Items
    assert ("DeclineItem", "invite-declined") in emulator.mailbox(ALICE).responses


def test_participation_refuses_what_cannot_be_answered(emulator) -> None:
    from providers.errors import InvalidInput, NotFound

    _invited(emulator, "invite-unanswered")
    own = emulator.add_item(ALICE, "own-meeting", None, Subject="Mine",
                            Start="2027-01-13T09:00:00Z", End="2027-01-13T10:00:00Z")
    calendar = _primary(emulator)
    with pytest.raises(InvalidInput):  # "needs_action" is not an answer
        _with(emulator, lambda p: p.set_participation(calendar, "invite-unanswered", None,
                                                      "needs_action"))
    with pytest.raises(InvalidInput):  # one's own event has nobody to answer
        _with(emulator, lambda p: p.set_participation(calendar, own.item_id, None,
                                                      "accepted"))
    with pytest.raises(NotFound):
        _with(emulator, lambda p: p.set_participation(calendar, "gone", None, "accepted"))
    assert not [r for r in emulator.mailbox(ALICE).responses
                if r[1] in ("invite-unanswered", "own-meeting", "gone")]


def test_a_recurring_series_reads_back_as_cronofy_would(emulator) -> None:
    """A weekly series: after each change to its master (SyncFolderItems reports the
    master), the window's occurrences are read with a CalendarView, so a moved occurrence
    is at its new time and a cancelled one is gone; deleting the master deletes them all."""
    def day(d: int, hour: int = 9) -> dt.datetime:
        return dt.datetime(2027, 1, d, hour, tzinfo=UTC)

    emulator.add_series(ALICE, "weekly-1", "2027-01-04T08:00:00Z", "2027-01-04T09:00:00Z",
                        "Europe/Berlin", Subject="Standup")
    window = TimeWindow(day(1, 0), day(31, 0))
    calendar = _primary(emulator)

    async def work(provider: EwsProvider) -> Any:
        first = await provider.sync(calendar, None, window)
        emulator.move_occurrence(ALICE, "weekly-1", day(11, 8), day(12, 14), day(12, 15))
        emulator.cancel_occurrence(ALICE, "weekly-1", day(18, 8))
        second = await provider.sync(calendar, first.cursor, window)
        emulator.edit(ALICE, "weekly-1", Subject="Daily sync")
        third = await provider.sync(calendar, second.cursor, window)
        emulator.remove(ALICE, "weekly-1")
        fourth = await provider.sync(calendar, third.cursor, window)
        return first, second, third, fourth

    first, second, third, fourth = _with(emulator, work)
    starts = [e.start for e in sorted(first.changed["weekly-1"], key=lambda e: e.start)]
    assert starts == [day(4, 8), day(11, 8), day(18, 8), day(25, 8)]
    moved = sorted(second.changed["weekly-1"], key=lambda e: e.start)
    assert [(e.start, e.end) for e in moved] == [
        (day(4, 8), day(4, 9)), (day(12, 14), day(12, 15)), (day(25, 8), day(25, 9))]
    assert all(e.recurring and e.resource_id == "weekly-1" for e in moved)
    assert len({e.instance_id for e in moved}) == 3
    # An occurrence keeps its id (named by its original start) across the master's edits.
    assert {e.instance_id for e in moved} <= {e.instance_id for e in first.changed["weekly-1"]}
    renamed = sorted(third.changed["weekly-1"], key=lambda e: e.start)
    assert [e.summary for e in renamed] == ["Daily sync"] * 3
    assert [e.instance_id for e in renamed] == [e.instance_id for e in moved]
    assert "weekly-1" in fourth.deleted and "weekly-1" not in fourth.changed


def test_free_busy_of_a_series_is_its_occurrences(emulator) -> None:
    """GetUserAvailability answers a series by its occurrences: a moved one busy at its new
    time, a cancelled one not at all."""
    def at(d: int, hour: int) -> dt.datetime:
        return dt.datetime(2027, 2, d, hour, tzinfo=UTC)

    emulator.add_series(ALICE, "weekly-fb", "2027-02-01T07:00:00Z", "2027-02-01T08:00:00Z",
                        "Europe/Berlin", Subject="Gym", LegacyFreeBusyStatus="Busy")
    emulator.move_occurrence(ALICE, "weekly-fb", at(8, 7), at(9, 15), at(9, 16))
    emulator.cancel_occurrence(ALICE, "weekly-fb", at(15, 7))
    calendar = _primary(emulator)
    try:
        blocks = _with(emulator, lambda p: p.free_busy(
            [calendar], TimeWindow(at(1, 0), at(28, 0))))
    finally:
        emulator.remove(ALICE, "weekly-fb")
    assert [(b.start, b.end, b.status) for _, b in blocks] == [
        (at(1, 7), at(1, 8), "busy"), (at(9, 15), at(9, 16), "busy"),
        (at(22, 7), at(22, 8), "busy")]


def test_one_occurrence_of_an_invited_series_is_answered_on_its_own(emulator) -> None:
    """Answering one occurrence (its instance id) sends the response for that occurrence
    only: it reads back accepted, the others still need an answer; declining another one
    takes just that occurrence out of the calendar."""
    emulator.invite(ALICE, "weekly-invite", "bob@contoso.test", weekly_in="UTC",
                    Subject="Mentoring", Start="2027-03-01T10:00:00Z",
                    End="2027-03-01T11:00:00Z")
    window = TimeWindow(dt.datetime(2027, 3, 1, tzinfo=UTC),
                        dt.datetime(2027, 3, 22, tzinfo=UTC))
    calendar = _primary(emulator)

    def by_start(events: Any) -> list[Any]:
        return sorted(events, key=lambda e: e.start)

    async def work(provider: EwsProvider) -> Any:
        first = await provider.sync(calendar, None, window)
        one, two, _three = by_start(first.changed["weekly-invite"])
        await provider.set_participation(calendar, "weekly-invite", one.instance_id,
                                         "accepted")
        await provider.set_participation(calendar, "weekly-invite", two.instance_id,
                                         "declined")
        after = await provider.sync(calendar, first.cursor, window)
        return first, after, (one.instance_id, two.instance_id)

    try:
        first, after, (one, two) = _with(emulator, work)
    finally:
        emulator.remove(ALICE, "weekly-invite")
    assert [e.participation_status for e in first.changed["weekly-invite"]] == [
        "needs_action"] * 3
    answered = by_start(after.changed["weekly-invite"])
    assert [(e.start.day, e.participation_status) for e in answered] == [
        (1, "accepted"), (15, "needs_action")]
    assert emulator.mailbox(ALICE).responses[-2:] == [("AcceptItem", one),
                                                      ("DeclineItem", two)]
    assert one != two and "weekly-invite" not in (one, two)

"""POST /v1/sequenced_availability over the mirror (issue 15, API.md s8.2), on both
databases: events in order with the gaps their buffers allow, each with its own members,
the ordinals deciding the order, an event's own periods, and 422s naming the item."""

from __future__ import annotations

from datetime import datetime

from tests.support.linked import Linked, busy_pair, hour

PATH = "/v1/sequenced_availability"


def z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def step(sequence_id, ordinal, member: Linked, **extra):
    return {"sequence_id": sequence_id, "ordinal": ordinal,
            "participants": [{"members": [{"sub": member.subject}], "required": "all"}],
            "required_duration": {"minutes": 60}, "start_interval": {"minutes": 60},
            "buffer": {}} | extra


def starts(r) -> list[tuple[str, ...]]:
    assert r.status_code == 200, r.text
    return [tuple(item["start"] for item in found["sequence"])
            for found in r.json()["sequences"]]


def test_two_events_in_order_with_gaps(http, link):
    a, b = busy_pair(link, (25, 26), (27, 28))
    secret = {"Authorization": f"Bearer {a.client_secret}"}
    gap = {"before": {"minimum": {"minutes": 30}, "maximum": {"minutes": 60}}}
    body = {"sequence": [step("interview", 1, a), step(456, 2, b, buffer=gap)],
            "available_periods": [{"start": z(hour(24)), "end": z(hour(32))}]}
    r = http.post(PATH, headers=secret, json=body)
    # a is free on the hour except at 25; b must be free 30 minutes before its slot, so not
    # at 27 or 28; b starts 30 to 60 minutes after a ends.
    assert starts(r) == [(z(hour(24)), z(hour(26))), (z(hour(27)), z(hour(29))),
                         (z(hour(28)), z(hour(30))), (z(hour(29)), z(hour(31)))]
    first = r.json()["sequences"][0]["sequence"]
    assert first == [
        {"sequence_id": "interview", "start": z(hour(24)), "end": z(hour(25)),
         "participants": [{"sub": a.subject}]},
        {"sequence_id": 456, "start": z(hour(26)), "end": z(hour(27)),
         "participants": [{"sub": b.subject}]}]
    # The ordinals decide the order, not the list; max_results bounds the answer.
    swapped = body | {"sequence": body["sequence"][::-1], "max_results": 2}
    assert starts(http.post(PATH, headers=secret, json=swapped)) == starts(r)[:2]
    # An event's own available_periods narrow where it may go.
    narrowed = body | {"sequence": [step("interview", 1, a), step(456, 2, b, buffer=gap,
                       available_periods=[{"start": z(hour(29)), "end": z(hour(32))}])]}
    assert starts(http.post(PATH, headers=secret, json=narrowed)) == starts(r)[1:]
    # A maximum gap nothing satisfies: no sequence at all.
    tight = {"after": {"minimum": {"minutes": 0}, "maximum": {"minutes": 0}}}
    body_tight = body | {"sequence": [step("interview", 1, a, buffer=tight),
                                      step(456, 2, b, buffer=gap)]}
    assert http.post(PATH, headers=secret, json=body_tight).json() == {"sequences": []}


def test_access_token_names_only_its_account(http, link):
    a, b = link(), link()
    a.sync()
    b.sync()
    token = a.token("read_free_busy")
    body = {"sequence": [step("1", 1, a), step("2", 2, a)],
            "query_periods": [{"start": z(hour(24)), "end": z(hour(27))}]}
    assert starts(http.post(PATH, headers=token, json=body)) == [
        (z(hour(24)), z(hour(25))), (z(hour(25)), z(hour(26)))]
    other = body | {"sequence": [step("1", 1, a), step("2", 2, b)]}
    r = http.post(PATH, headers=token, json=other)
    assert r.status_code == 422 and "sequence.participants.members.sub" in r.json()["errors"]
    assert http.post(PATH, headers=a.token("read_account"), json=body).status_code == 403
    assert http.post(PATH, json=body).status_code == 401


def test_bad_sequences_answer_422_naming_the_field(http, link):
    a = link()
    a.sync()
    token = a.token("read_free_busy")
    periods = [{"start": z(hour(24)), "end": z(hour(27))}]

    def field(body) -> list[str]:
        r = http.post(PATH, headers=token, json=body)
        assert r.status_code == 422, r.text
        return list(r.json()["errors"])

    assert field({"query_periods": periods}) == ["sequence"]
    assert field({"sequence": [], "query_periods": periods}) == ["sequence"]
    assert field({"sequence": [step("1", 1, a)] * 11, "query_periods": periods}) == [
        "sequence"]
    assert field({"sequence": [step("1", 1, a)]}) == ["query_periods"]
    assert field({"sequence": ["x"], "query_periods": periods}) == ["sequence[0]"]
    no_duration = step("2", 2, a)
    del no_duration["required_duration"]
    assert field({"sequence": [step("1", 1, a), no_duration], "query_periods": periods}) == [
        "sequence[1].required_duration"]
    assert field({"sequence": [step("1", 1, a, start_interval={"minutes": 7})],
                  "query_periods": periods}) == ["sequence[0].start_interval"]
    assert field({"sequence": [step("1", 1, a, buffer={"before": {
        "minimum": {"minutes": 30}, "maximum": {"minutes": 10}}})],
        "query_periods": periods}) == ["sequence[0].buffer.before.maximum"]
    assert field({"sequence": [step(None, 1, a)], "query_periods": periods}) == [
        "sequence[0].sequence_id"]
    assert field({"sequence": [step("1", None, a)], "query_periods": periods}) == [
        "sequence[0].ordinal"]
    assert field({"sequence": [step("1", 1, a), step("1", 2, a)],
                  "query_periods": periods}) == ["sequence.sequence_id"]
    assert field({"sequence": [step("1", 1, a)], "query_periods": periods,
                  "max_results": 0}) == ["max_results"]

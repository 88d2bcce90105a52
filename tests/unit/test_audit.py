"""Audit events: whitelisted fields only, and no value able to forge a field or a line."""

from __future__ import annotations

import io

from twofad.audit import Audit


def _line(**values: object) -> str:
    stream = io.StringIO()
    Audit(stream=stream).event("verify", **values)
    return stream.getvalue()


def test_plain_values_are_bare_and_fields_keep_their_order() -> None:
    line = _line(user="alice", result="accepted", service="sshd", rhost="::1")
    assert line == "twofad: event=verify user=alice result=accepted service=sshd rhost=::1\n"


def test_every_event_names_the_host_it_happened_on() -> None:
    stream = io.StringIO()
    Audit(stream=stream, host="web1").event("verify", user="alice", result="accepted")
    assert stream.getvalue() == "twofad: event=verify user=alice result=accepted host=web1\n"
    sent: list[dict[str, str]] = []
    journal = Audit(send=lambda message, **fields: sent.append(fields), host="web1")
    journal.event("verify", user="alice", result="accepted")
    assert sent[0]["TWOFA_HOST"] == "web1"


def test_a_value_cannot_end_its_line_or_forge_a_field() -> None:
    line = _line(user="alice", error='x\nevent=verify user=root result="accepted"\\')
    assert line.count("\n") == 1
    assert line == (
        'twofad: event=verify user=alice error="x\\x0aevent=verify user=root '
        'result=\\"accepted\\"\\\\"\n'
    )


def test_fields_outside_the_list_never_reach_the_log() -> None:
    line = _line(user="alice", code="123456", secret="JBSWY3DPEHPK3PXP", result="rejected")
    assert "123456" not in line and "JBSWY3DP" not in line
    assert line == "twofad: event=verify user=alice result=rejected\n"


def test_journal_fields_carry_the_priority_of_a_refusal() -> None:
    sent: list[tuple[str, dict[str, str]]] = []
    Audit(send=lambda message, **fields: sent.append((message, fields))).event(
        "verify", user="bob", result="locked", retry_after=30
    )
    message, fields = sent[0]
    assert message == "verify bob: locked"
    assert fields["PRIORITY"] == "4" and fields["TWOFA_RETRY_AFTER"] == "30"
    assert fields["SYSLOG_IDENTIFIER"] == "twofad"


def test_when_the_journal_refuses_a_line_it_goes_to_stderr_instead() -> None:
    def journal_away(*args: object, **fields: object) -> None:
        raise OSError("no journal socket")

    stream = io.StringIO()
    audit = Audit(send=journal_away, stream=stream)
    audit.event("verify", user="alice", result="rejected")
    audit.note("listening")
    assert stream.getvalue() == (
        "twofad: event=verify user=alice result=rejected\ntwofad: listening\n"
    )

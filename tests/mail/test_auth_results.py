"""RFC 8601 Authentication-Results read properly, in Exchange Online's shape too, in linear time."""

from __future__ import annotations

import time

import pytest

from bot.mail.auth_results import parse_auth_results


def results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(r.method, r.result, r.properties) for r in parse_auth_results(value).results]


def test_a_quoted_semicolon_is_part_of_the_value_not_a_new_result() -> None:
    # Given a sender address whose quoted local part holds "; dmarc=pass",
    value = 'mx.example.org; spf=pass smtp.mailfrom="x;dmarc=pass"@evil.example'
    # then there is one SPF result for evil.example, and no DMARC result at all.
    assert results(value) == [("spf", "pass", {"smtp.mailfrom": "x;dmarc=pass@evil.example"})]


def test_opendkims_comment_with_a_semicolon_keeps_the_signing_domain() -> None:
    # Given OpenDKIM's usual comment "(2048-bit key; unprotected)",
    value = ("mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=gp.example "
             'header.i=@gp.example header.b="AbC;d"')
    # then the DKIM result keeps its domain and the quoted signature.
    assert results(value) == [("dkim", "pass", {"header.d": "gp.example",
                                                "header.i": "@gp.example", "header.b": "AbC;d"})]


def test_exchange_onlines_shape_has_no_authserv_id() -> None:
    # Given the header Exchange Online Protection writes,
    value = ("spf=pass (sender IP is 203.0.113.5) smtp.mailfrom=gp.example; dkim=pass "
             "(signature was verified) header.d=gp.example;dmarc=pass action=none "
             "header.from=gp.example;compauth=pass reason=100")
    header = parse_auth_results(value)
    # then it has no authserv-id, four results, and compauth's reason is kept apart.
    assert header.authserv_id is None
    assert [(r.method, r.result) for r in header.results] == [
        ("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass"), ("compauth", "pass")]
    assert header.results[2].properties == {"action": "none", "header.from": "gp.example"}
    assert header.results[3].reason == "100"


@pytest.mark.parametrize("value, authserv_id, methods", [
    ("mx.example.org 1; spf=pass smtp.mailfrom=a.example", "mx.example.org", ["spf"]),
    ("mx.example.org; none", "mx.example.org", []),
    ('"mx.example.org" ; dkim/1=pass header.d=a.example', "mx.example.org", ["dkim"]),
    ("mx.google.com;\r\n  arc=pass (i=1 spf=pass spfdomain=a dkim=pass dkdomain=b);\r\n"
     "  dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=a.example", "mx.google.com",
     ["arc", "dmarc"]),
    ("mx.example.org; ;;= =; (unclosed comment dmarc=pass", "mx.example.org", []),
])
def test_versions_none_method_versions_comments_and_junk(
    value: str, authserv_id: str, methods: list[str]
) -> None:
    # Given each shape RFC 8601 allows (and some junk), then the methods read are exactly these.
    header = parse_auth_results(value)
    assert header.authserv_id == authserv_id
    assert [r.method for r in header.results] == methods


@pytest.mark.parametrize("unit", ["(", '"', "a=", "a.b", "\\", pytest.param(
    "; dkim=pass header.d=x.example", marks=pytest.mark.slow)])
def test_reading_takes_linear_time_whatever_the_header_holds(unit: str) -> None:
    # Given 40,000 and 320,000 repetitions of a hostile unit,
    timings = []
    for count in (40_000, 320_000):
        value = "mx.example.org; " + unit * count
        # The process's CPU time, so a parallel test worker on the same cores does not count.
        started = time.process_time()
        parse_auth_results(value)
        timings.append(time.process_time() - started)
    # then eight times the text takes well under sixty-four times as long (not quadratic).
    assert timings[1] < max(timings[0], 0.001) * 30

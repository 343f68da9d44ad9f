"""``reReplaceAll`` and ``match`` in alert templates read their pattern as Go's RE2 does, as the
PromQL matchers already did: they compiled it with Python's ``re`` as written, so a POSIX class
matched the wrong characters without a word (``[[:space:]]+`` is a class of ``[:space`` then a
literal ``]+`` there), ``\\d``/``\\w``/``\\s`` took Unicode digits, letters and spaces, ``$`` matched
before a final newline, and ``a(?i)b`` or ``\\Q...\\E`` rendered an error. Expected texts are what
promtool 2.42 renders for the same templates (``promtool test rules``, its "got" annotations)."""

from __future__ import annotations

import pytest

from monitor.rules.template import AlertTemplate


def expand(text: str) -> str:
    return AlertTemplate.compile(text, "P").expand({"job": "api"}, 1.0)


@pytest.mark.parametrize(("text", "want"), [
    ('{{ reReplaceAll "[[:space:]]+" "_" "a b  c" }}', "a_b_c"),
    ('{{ match "^[[:alpha:]]+$" "abc" }}', "true"),
    ('{{ reReplaceAll "[^[:digit:]]" "" "v1.2.3" }}', "123"),
    ('{{ reReplaceAll "a(?i)b" "X" "aB ab AB" }}', "X X AB"),
    ('{{ reReplaceAll "\\\\d" "#" "a\u06612" }}', "a\u0661#"),
    ('{{ reReplaceAll "[\\\\d]" "#" "1\u0662" }}', "#\u0662"),
    ('{{ match "\\\\w+" "\u00e9" }}', "false"),
    ('{{ reReplaceAll "\\\\s" "_" "a\u00a0b c" }}', "a\u00a0b_c"),
    ('{{ reReplaceAll "x$" "Y" "x\\n" }}', "x\n"),
    ('{{ reReplaceAll "\\\\Qa.b\\\\E" "X" "a.b axb" }}', "X axb"),
    # what the translation must leave as it was (promtool renders the same)
    ('{{ reReplaceAll "(?m)b$" "Y" "ab\\nb" }}', "aY\nY"),
    ('{{ reReplaceAll "(?m)^" "> " "a\\nb" }}', "> a\n> b"),
    ('{{ reReplaceAll "(?P<n>a)" "${n}!" "aa" }}', "a!a!"),
    ('{{ reReplaceAll "a*" "-" "baaac" }}', "-b-c-"),
    ('{{ match "(?s)a.c" "a\\nc" }}', "true"),
    ('{{ reReplaceAll "a(?m)$" "!" "a\\na" }}', "!\n!"),
    ('{{ reReplaceAll "(?i)\u00c9" "e" "\u00e9" }}', "e"),
    ('{{ reReplaceAll "(?i:a)b" "X" "Ab AB" }}', "X AB"),
])
def test_template_regexps_are_read_as_re2(text: str, want: str) -> None:
    assert expand(text) == want


def test_a_pattern_re2_takes_and_the_engine_does_not_is_said_in_the_text() -> None:
    """``\\pL`` (a Unicode class, which Python's ``re`` lacks) renders an error naming it rather
    than a text that differs from Prometheus's without a word."""
    text = expand('{{ reReplaceAll "\\\\pL" "L" "a1" }}')
    assert text.startswith("<error expanding template:") and "Unicode class \\p" in text and "not support" in text

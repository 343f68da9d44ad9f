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


def test_unicode_classes_and_what_python_lacks_are_read_as_go() -> None:
    """``\\pL``, ``[[:^alpha:]]``, ``(?U)`` and ``\\b`` (ASCII in Go) were refused or read
    otherwise before the engine ran RE2's library; these are what Go's regexp renders."""
    assert expand('{{ reReplaceAll "\\\\pL" "L" "a1\u00e9" }}') == "L1L"
    assert expand('{{ reReplaceAll "[[:^alpha:]]+" "_" "ab12cd" }}') == "ab_cd"
    assert expand('{{ reReplaceAll "(?U)a+" "x" "aaa" }}') == "xxx"
    assert expand('{{ reReplaceAll "\\\\b" "|" "a\u00e9b" }}') == "|a|\u00e9|b|"


def test_a_pattern_go_refuses_is_said_in_its_words() -> None:
    text = expand('{{ reReplaceAll "(a" "x" "a" }}')
    assert text.startswith("<error expanding template:") and "error parsing regexp: missing closing ): `(a`" in text


def test_a_pattern_from_a_label_holding_a_lone_surrogate_is_read_as_go_holds_it() -> None:
    """A label value JSON brought in may hold a lone surrogate (``"\\udc80"``), which Go's JSON reads
    as U+FFFD; used as a template's pattern it raised UnicodeEncodeError in RE2's binding (the
    template rendered an error and a warning was logged as a bug). It is read with U+FFFD, as the
    text it is matched against already was."""
    template = AlertTemplate.compile('{{ reReplaceAll $labels.p "x" $labels.v }}|{{ match $labels.p $labels.v }}', "P")
    assert template.expand({"p": "b\udc80", "v": "ab\udc80c"}, 1.0) == "axc|true"
    assert template.expand({"p": "(\udc80", "v": "a"}, 1.0).startswith("<error expanding template:")  # still Go's refusal

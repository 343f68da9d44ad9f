"""Regular expressions in PromQL held to the real Prometheus v2.42 (Go's regexp).

Series ``m{v="..."}`` whose values sit where Python's ``re`` and Go's RE2 part (Unicode digits and
letters, a value ending in a newline, case folding of K/S, a non-breaking space, an empty value)
are backfilled into a real Prometheus; every pattern is asked of it and of the in-agent engine as
an ``=~`` and a ``!~`` matcher and in ``label_replace`` (its groups written out by ``$1``, ``${2}``,
``$name``), and the answers must be the same series with the same labels, or both refuse the
pattern; each pattern written as a raw (backtick) and as a double-quoted string. Before the engine
ran RE2's library, 15 of these 46 patterns failed: refused by the parser binding (a backtick string
holding a backslash, ``\\Q...\\E``, octal ``\\141``), by the translation into Python's ``re``
(``\\pL``, ``[[:^alpha:]]``, ``(?U)``), or taken where Prometheus refuses (``x{1001}``, ``a)|(b`` in
a matcher).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest

from monitor.promql import Engine, PromQLError, SeriesStore
from tests.conftest import require_binary
from tests.prometheus_tsdb import prometheus_over, query

pytestmark = pytest.mark.e2e

BASE = (int(time.time()) // 3600 - 2) * 3600
VALUES = ["production", "Production", "staging", "a", "ab", "aab", "a\n", "\u00e9", "\u00c9", "1", "42",
          "\u0661", "a b", "a\u00a0b", "k", "\u212a", "s", "\u017f", "x.y", "a.b", "", "foo_bar", "foo-bar",
          "\u03b1\u03b2", "a\nb", "abc123"]
PATTERNS = [
    "prod.*", "(?i)PROD.*", "a(?i)B", "(?i:a)b", r"\d+", "[[:digit:]]+", "[[:^alpha:]]+", r"\pL+",
    r"\p{Greek}+", r"\PL+", r"\w+", r"\W+", r"a\sb", r"a\b.*", r".*\B.*", "(?U)(a+)(.*)", "(a+?)(.*)",
    "a$", "(?m)a$", "(?s).+", ".+", r"\Qa.b\E", "a)|(b", "x{2,}", "(?i)k", "(?i)s", "[^a]+", ".*", "a|ab",
    r"\x{e9}", r"\141b?", "(?P<name>.)(.*)", "(.)(.)?(.)?", "[a-c]+[0-9]*", "(?i)[é]", "",
    # refused by Go: the engine must refuse them too
    "(a", "a**", "[z-a]", "x{1001}", r"\8", r"\C", r"a\Z", "(?z)a", "[[:foo:]]", "*a",
    # taken by RE2 C++, refused by Go 1.19 (Prometheus 2.42's)
    "(?<name>.)(.*)", "(?P<\u00e9>.)(.*)",
]
REPLACEMENT = "[$1][${2}][$name][$$][$9]"


def _om_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _openmetrics() -> str:
    lines = ["# TYPE m gauge"]
    for i, value in enumerate(VALUES):
        lines.append(f'm{{i="{i}",v="{_om_escape(value)}"}} {i} {BASE}')
    return "\n".join(lines + ["# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prometheus_and_store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with prometheus_over(_openmetrics(), tmp_path_factory.mktemp("regex-diff")) as port:
        store = SeriesStore(retention_s=1e9)
        for i, value in enumerate(VALUES):
            store.append({"__name__": "m", "i": str(i), "v": value}, BASE, float(i))
        yield port, store


def _prometheus(port: int, expr: str) -> set[tuple[tuple[str, str], ...]] | None:
    answer: dict[str, Any] = query(port, expr, BASE + 10)
    if answer.get("status") != "success":
        return None
    return {tuple(sorted(r["metric"].items())) for r in answer["data"]["result"]}


def _ours(store: SeriesStore, expr: str) -> set[tuple[tuple[str, str], ...]] | None:
    try:
        result = Engine().compile(expr).instant(store, BASE + 10)
    except PromQLError:
        return None
    return {tuple(sorted(s.labels.to_dict().items())) for s in result}  # type: ignore[union-attr]


def _raw(pattern: str) -> str:
    assert "`" not in pattern
    return f"`{pattern}`"


def _quoted(pattern: str) -> str:
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_mean_what_they_mean_in_prometheus(prometheus_and_store, pattern: str) -> None:  # type: ignore
    port, store = prometheus_and_store
    problems = []
    for literal in (_raw(pattern), _quoted(pattern)):
        for expr in (f"m{{v=~{literal}}}", f"m{{v!~{literal}}}",
                     f'label_replace(m, "out", "{REPLACEMENT}", "v", {literal})'):
            want, got = _prometheus(port, expr), _ours(store, expr)
            if want != got:
                only_prom = None if want is None or got is None else sorted(want - got)[:3]
                only_ours = None if want is None or got is None else sorted(got - want)[:3]
                problems.append(f"{expr}: Prometheus {'refused' if want is None else f'{len(want)} series'}, "
                                f"ours {'refused' if got is None else f'{len(got)} series'}; "
                                f"only Prometheus {only_prom}, only ours {only_ours}")
    assert not problems, "\n".join(problems)


def test_the_comparison_is_not_vacuous(prometheus_and_store) -> None:  # type: ignore
    """Most patterns select some series and leave others, and the refused ones are refused by
    Prometheus, so that equality above says something."""
    port, _ = prometheus_and_store
    partial = refused = 0
    for pattern in PATTERNS:
        got = _prometheus(port, f"m{{v=~{_raw(pattern)}}}")
        if got is None:
            refused += 1
        elif 0 < len(got) < len(VALUES):
            partial += 1
    assert refused == 13
    assert partial >= 30


def test_an_error_quoting_a_regex_matcher_quotes_it_as_written() -> None:
    """The parser binding reads a regex matcher as a marked equality (``ast._literals_for_the_parser``);
    an error that quotes its value quotes the pattern, never the mark."""
    with pytest.raises(PromQLError) as info:
        Engine().compile('foo{__name__=~"b.*"}')  # refused by Prometheus too: the name set twice
    assert "'b.*'" in str(info.value) and "\x00" not in str(info.value)


#: Common mistakes in a matcher's pattern, and what RE2 C++ takes and Go does not.
MISTAKES = [
    "(a", "a)", "[a", "[]", "[^]", "\\", "a\\", "(?i", "[[:alpha:]", r"\x4", "((((a", "[z-a]", "a**", "*a",
    "x{1001}", r"\8", r"\C", "(?z)a", "[[:foo:]]", "(?P<n>a)(?P<n>b)", "(?P<>a)", r"\p{Foo}", "a)|(b",
    "(?<n>a)", "(?<=a)b", "(?<!a)b", "(?P<\u00e9>a)", "(?P<ab-c>a)", "(?P<n>a)|(?<m>b)",
    # taken by both: literal where they look like the above
    "[(?<]", r"\(?<", r"\Q(?<\E", "[[:alpha:](?<]", "[]](?<]", r"[\]](?<]", "(?P<a1_B>a)",
]


def test_a_refused_pattern_is_refused_as_promtool_words_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each matcher pattern is refused where ``promtool check rules`` (Go 1.19's regexp) refuses it, with
    Go's text: the anchored form quoted where Go quotes it (``missing closing ): `^(?:(a)$```), named
    groups Go 1.19 lacks refused (``(?<n>``, ``(?P<\u00e9>``)."""
    promtool = require_binary("promtool")
    lines = ["groups:", "- name: g", "  rules:"]
    for i, pattern in enumerate(MISTAKES):
        lines += [f"  - record: r{i}", "    expr: " + json.dumps(f"m{{v=~{_quoted(pattern)}}}")]
    (tmp_path / "rules.yml").write_text("\n".join(lines) + "\n")
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True,
                         text=True, timeout=60)
    go = {int(m.group(1)) - 1: m.group(2)
          for m in re.finditer(r'rule (\d+), "r\d+": could not parse expression: \d+:\d+: parse error: (.*)',
                               out.stdout + out.stderr)}
    assert len(go) == 30  # the 30 mistakes above; the last 6 patterns are taken
    problems = []
    for i, pattern in enumerate(MISTAKES):
        try:
            Engine().compile(f"m{{v=~{_quoted(pattern)}}}")
            ours = None
        except PromQLError as exc:
            ours = str(exc)
        if (ours is None) != (i not in go) or (ours is not None and not ours.endswith(": " + go[i])):
            problems.append(f"{pattern!r}: promtool {go.get(i, 'takes it')!r}, ours {ours or 'takes it'!r}")
    assert not problems, "\n".join(problems)


#: Queries whose string literals the rewrite before the parser binding (``ast._literals_for_the_parser``)
#: must leave meaning what they mean: comments and strings holding quotes, ``#``, ``~`` and backticks,
#: escapes in matcher values, modifiers, subqueries, and strings left unterminated (refused).
LITERALS = [
    'm{v=~"a.*"} # a comment holding "a quote, =~"x" and a `tick',
    'm{v=~"a.*" # a comment inside the braces "\n}',
    'm{v=~ # between the operator and its value\n"a.*"}',
    "m{v=~'a\\'?b?'}", 'm{v=~"a\\"?b?"}', "m{v=~`a\"?'?b?`}", 'm{v=~"\\u00e9"}', 'm{v=~"\\x61b"}',
    'm{v=~"\\141b"}', 'm{v=~"\\\\x61b"}', 'm{v=~"a\\n"}', 'm{v=~`a\n`}', 'm{v=~"a\\\\n"}', 'm{v=~`a\\n`}',
    'm{v=~"a.*"} offset 1m @ 100', 'm{v=~"a.*"} @ -10', 'max_over_time(m{v=~"a.*"}[30m:1m] @ -10)',
    '{__name__=~"m|n", v!~"a.*"}', 'm{v=~"a.*", v!~"ab"}', 'absent(m{v=~"nope"})', 'absent(m{v="~"})',
    # an equality on a value that starts as the parser's mark of a regex matcher once did: still equality
    'm{v="\\x00=~\\x00a"}', 'm{v!="\\x00!~\\x00a"}',
    # unterminated: Prometheus refuses them ("unterminated quoted string")
    'm{v=~"a', "m{v=~'a", '"a~b', "'a~b", 'm{v=~"a.*"} + "a`b', 'm{v=~"a\\',
]


@pytest.mark.parametrize("expr", LITERALS)
def test_literals_around_regex_matchers_mean_what_they_mean_in_prometheus(prometheus_and_store, expr: str) -> None:  # type: ignore
    port, store = prometheus_and_store
    want = _prometheus(port, expr)
    try:
        result = Engine().compile(expr).instant(store, BASE + 10)
    except PromQLError:
        got = None
    else:
        got = ({tuple(sorted(s.labels.to_dict().items())) for s in result}  # type: ignore[union-attr]
               if isinstance(result, list) else f"the {type(result).__name__} {result!r}")
    assert want == got, f"{expr!r}: Prometheus {'refused' if want is None else want}, ours {got}"


@pytest.mark.parametrize("expr", ['m{v=~"a', "m{v=~'a}", 'm{v="a"} + m{w=~"b', '"a~b'])
def test_an_unterminated_string_is_said_to_be_so(expr: str) -> None:
    """As Prometheus says it (``parse error: unterminated quoted string``), not closed by the rewrite
    and then reported as an unclosed brace, or taken."""
    with pytest.raises(PromQLError, match="unterminated quoted string"):
        Engine().compile(expr)

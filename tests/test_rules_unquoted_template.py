"""A template that starts a YAML value unquoted (``summary: {{ $labels.job }} is down``), the most
common slip in a rule file, is refused with the fix named: YAML reads the ``{`` as a mapping, and
the check said only ``expected <block end>, but found '<scalar>'`` or ``value must be a string,
got a mapping``, naming no template."""

from __future__ import annotations

import textwrap

from monitor.rules.loader import parse_rules_text

HINT = 'a value that starts with a template must be quoted: summary: "{{ $labels.job }} is down"'


def _errors(annotation: str) -> list[str]:
    text = textwrap.dedent("""
        groups:
        - name: g
          rules:
          - alert: A
            expr: up == 0
            annotations:
              summary: %s
    """) % annotation
    _, errors = parse_rules_text(text, "r.yml")
    return [str(e) for e in errors]


def test_template_then_text_unquoted_names_the_fix() -> None:
    (msg,) = _errors("{{ $labels.job }} is down")
    assert msg.startswith("r.yml: 8:34: yaml: ") and msg.endswith(f"({HINT})")


def test_template_alone_unquoted_names_the_fix() -> None:
    (msg,) = _errors("{{ $labels.job }}")
    assert "annotations 'summary': value must be a string, got a mapping" in msg and msg.endswith(f"({HINT})")


def test_other_yaml_errors_and_quoted_templates_get_no_hint() -> None:
    assert _errors('"{{ $labels.job }} is down"') == []
    (msg,) = _errors('"{{ $labels.job }} is down')
    assert "yaml:" in msg and HINT not in msg
    (msg,) = _errors("{a: {b: c}}")  # a mapping, not a template
    assert "got a mapping" in msg and HINT not in msg

"""The fix told for a ``probing.client_id_salt`` that is no string (session 29 review) quoted the
value YAML had read, not the one written: ``client_id_salt: 0123`` (YAML's octal 83) was told
``quote it: client_id_salt: "83"``, a salt other than the one written (the very mistake the check
is for), and an empty ``client_id_salt:`` was told to write ``"None"``. The fix now says to quote
the salt as written, and that leaving the key out gives a random salt."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, parse_config


@pytest.mark.parametrize("salt, read", [(83, "83"), (None, "None"), (1.5, "1.5")])
def test_the_fix_never_quotes_the_value_yaml_read(salt: object, read: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "probing": {"client_id_salt": salt}})
    assert err.value.key == "probing.client_id_salt"
    assert f'"{read}"' not in err.value.fix and "as written" in err.value.fix and "leave" in err.value.fix

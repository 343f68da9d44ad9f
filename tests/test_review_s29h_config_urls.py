"""URLs of monitor.yaml that :func:`urllib.parse.urlsplit` itself refuses (session 29 review): an
unclosed IPv6 bracket (``http://[::1:9093``) raised a bare ``ValueError: Invalid IPv6 URL`` out of
``load_config``, ``monitor config check`` and ``monitor serve``, naming neither the key nor the fix;
``rules.external_url`` gained that crash with its new check. Each is now a ConfigError naming its
key, as any other URL that cannot be used."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, parse_config
from monitor.server.settings import settings_from

BAD = "http://[::1:9093"


@pytest.mark.parametrize("rules, key", [
    ({"external_url": BAD}, "rules.external_url"),
    ({"alertmanager": [BAD]}, "rules.alertmanager"),
    ({"webhook": [BAD]}, "rules.webhook"),
])
def test_an_unreadable_receiver_or_link_url_names_its_key(rules: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "rules": rules})
    assert err.value.key == key and "IPv6" in err.value.problem and "brackets" in err.value.problem


@pytest.mark.parametrize("proxy_url, key", [(None, "server.proxy.upstream"), (BAD, "--proxy")])
def test_an_unreadable_upstream_names_its_key(proxy_url: str | None, key: str) -> None:
    agent = parse_config({"model": "m", "server": {"proxy": {"upstream": BAD}} if proxy_url is None else {}})
    with pytest.raises(ConfigError) as err:
        settings_from(agent, proxy_upstream=proxy_url)
    assert err.value.key == key and "IPv6" in err.value.problem and "brackets" in err.value.problem

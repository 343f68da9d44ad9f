"""``monitor config check`` reports every independent error of the ``server:`` section's sidecar
settings (``proxy``, ``cloudevents``, ``forward``, limits, tokens) and of the ``output`` section's
structural checks, as it does for the rest of the file since s38d: before, each of these stopped
at its first error, and a file with three mistakes there took three runs. ``monitor serve``,
``Monitor(...)`` and a reload still raise (and print) the first error, in the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.server.settings import settings_from


def _check(tmp_path: Path, text: str) -> tuple[int, str, list[str]]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED: ")]
    return res.exit_code, res.output, failed


SERVER = """\
model: iris
server:
  proxy:
    upstream: http://127.0.0.1:8080
    engine: fast
    routes:
      - {path: predict}
      - {path: /score, model: irsi}
  cloudevents: {require_token: "no", max_pending: 0}
  forward: {udp: nohost}
  shutdown_timeout: soon
"""


def test_every_independent_error_of_the_sidecar_settings_is_reported(tmp_path):
    code, out, failed = _check(tmp_path, SERVER)
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    assert keys == ["server.proxy.routes[0].path", "server.proxy.routes[1].model", "server.proxy.engine",
                    "server.cloudevents.require_token", "server.cloudevents.max_pending", "server.forward.udp",
                    "server.shutdown_timeout"], failed
    assert all(". Fix: " in line for line in failed), failed
    assert "names no served model: 'irsi' (served: iris)" in failed[1]
    assert "must be auto, lean or aiohttp, got 'fast'" in failed[2]
    assert "SUCCESS" not in out


def test_the_sidecar_still_raises_the_first_error_of_its_settings_in_the_same_words():
    import yaml

    agent = parse_config(yaml.safe_load(SERVER))
    with pytest.raises(ConfigError) as err:
        settings_from(agent)  # what `monitor serve` and a reload call, and print
    assert str(err.value) == ("<config>: server.proxy.routes[0].path: must be a URL path starting with /, got "
                              "'predict'. Fix: write path: /predict")
    assert err.value.key == "server.proxy.routes[0].path"


OUTPUT = """\
model: chat
features: [prompt, {name: output}]
output:
  kind: text
  classes: [a, b]
  samples_axis: true
  quantiles: [0.5]
"""


def test_every_independent_error_of_the_output_section_is_reported(tmp_path):
    code, out, failed = _check(tmp_path, OUTPUT)
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    assert keys == ["output.classes", "features[1].name", "output.samples_axis", "output.quantiles"], failed
    assert all(". Fix: " in line for line in failed), failed
    assert "output.kind: text reads no scores" in failed[0]
    assert "'output' is the text feature output.kind: text monitors" in failed[1]
    assert "not to kind: text" in failed[2]
    assert "apply to regression outputs only" in failed[3]
    assert "NOTE: model 'chat': its detectors were not built: they are built on its features, output" in out
    assert "SUCCESS" not in out


def test_a_reserved_feature_name_is_told_at_its_own_entry_after_an_entry_in_error(tmp_path):
    # the entry in error is left out of the features read: the name was told at the index of the
    # features read (features[0]), the entry in error's key, and so not at all
    code, out, failed = _check(tmp_path, "model: chat\nfeatures: [{name: 5}, output]\noutput: {kind: text}\n")
    keys = [line.split(": ")[2] for line in failed]
    assert keys == ["features[0].name", "features[1].name"], failed
    assert "'output' is the text feature" in failed[1]


def test_monitor_still_raises_the_first_error_of_the_output_section_in_the_same_words():
    import yaml

    from monitor import Monitor

    with pytest.raises(ConfigError) as err:
        parse_config(yaml.safe_load(OUTPUT))
    assert str(err.value) == ("<config>: output.classes: names the columns of the model's scores, and output.kind: text "
                              "reads no scores. Fix: remove classes (the answers are monitored as the text feature output)")
    with pytest.raises(ConfigError, match=r"^<config>: output.classes: names the columns"):
        Monitor(config=yaml.safe_load(OUTPUT), start_worker=False)


def test_a_model_name_in_error_is_named_as_written_or_as_the_model(tmp_path):
    # before, the rest of the file was checked on a model called 'default': its NOTE and its
    # detectors' refusals named a model the file does not have
    text = "model: {name}\noutput: {{kind: probabilites}}\ndetectors: [{{kind: segments, gap_level: 2}}]\n"
    code, out, failed = _check(tmp_path, text.format(name='"fraud v3"'))
    assert [line.split(": ")[2] for line in failed] == ["model", "output.kind"], failed
    assert "NOTE: model 'fraud v3': its detectors were not built" in out
    assert "'default'" not in out
    code, out, failed = _check(tmp_path, text.format(name="5").replace("probabilites", "probabilities"))
    assert [line.split(": ")[2] for line in failed] == ["model", "the model"], failed
    assert "the model: detectors[0].gap_level: segments: gap_level must be in (0.5, 1), got 2" in failed[1]
    assert "'default'" not in out and "''" not in out


def test_two_models_whose_names_are_in_error_are_no_duplicates(tmp_path):
    code, out, failed = _check(tmp_path, "models:\n  - model: 5\n  - model: [a]\n")
    assert [line.split(": ")[2] for line in failed] == ["models[0].model", "models[1].model"], failed

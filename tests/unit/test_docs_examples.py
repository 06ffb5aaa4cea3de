"""The examples in docs/configuration-guide.md are real, valid configurations."""

from __future__ import annotations

import re
from pathlib import Path

from ferryd.config.loader import load_configuration
from ferryd.config.models import LocalFileHandlerModel
from ferryd.server import preflight

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "configuration-guide.md"


def ini_blocks() -> list[str]:
    return re.findall(r"```ini\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_guide_example_is_valid_and_its_override_applies(tmp_path: Path) -> None:
    main, override = ini_blocks()
    (tmp_path / "server.ini").write_text(main)
    configuration = load_configuration(tmp_path, node="node-a")
    assert preflight(configuration) == []
    model = configuration.sections[("event-handlers", "DEFAULT-FILE")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert model.rotate_on == "00:00 time-of-day"
    (tmp_path / "server.override.ini").write_text(override)
    overridden = load_configuration(tmp_path, node="node-a")
    model = overridden.sections[("event-handlers", "DEFAULT-FILE")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert (model.rotate_on, model.rotate_at_size, model.rotate_count) == (
        "disabled",
        104857600,
        10,
    )
    assert model.path.text == "log/server-{host.name}.log"

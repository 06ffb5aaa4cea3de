"""Loading a configuration folder: models, overrides, and errors that name file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ferryd.config.loader import load_configuration
from ferryd.config.models import LocalFileHandlerModel
from ferryd.config.problems import ConfigurationError

WriteIni = Callable[..., Path]


def problems_of(config_dir: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_configuration(config_dir, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_defaults_apply_to_missing_options(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("""
        [event-handlers/log]
        type = local-file
    """)
    configuration = load_configuration(config_dir, node="n1")
    model = configuration.sections[("event-handlers", "log")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert model.enabled is True
    assert model.rotate_count == 0
    assert model.path.text == "log/server.log"
    assert configuration.server.uuid == "test-server"
    assert configuration.node_name == "n1"


def test_booleans_accept_every_documented_spelling(write_ini: WriteIni, config_dir: Path) -> None:
    spellings = ["yes", "No", "TRUE", "false", "y", "N", "on", "OFF", "1", "0"]
    write_ini(
        "".join(
            f"\n[event-handlers/h{i}]\ntype = standard-stream\nenabled = {word}\n"
            for i, word in enumerate(spellings)
        )
    )
    configuration = load_configuration(config_dir)
    values = [configuration.component_model(("event-handlers", f"h{i}")).enabled for i in range(10)]
    assert values == [True, False, True, False, True, False, True, False, True, False]


def test_non_boolean_names_file_line_section_and_option(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini("""
        [event-handlers/log]
        type = local-file
        enabled = maybe
    """)
    assert problems_of(config_dir) == [
        f"{path}:10: [event-handlers/log] enabled: expected a boolean "
        "(yes/no, true/false, y/n, on/off, 1/0), got 'maybe'"
    ]


def test_syntax_error_names_its_line(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("just some words\n")
    assert problems_of(config_dir)[0].startswith(f"{path}:7: ")


def test_unknown_section_kind_lists_the_known_ones(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[servcies/sftp-1]\ntype = ssh\n")
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{path}:8: [servcies/sftp-1] unknown section kind 'servcies'")
    assert "event-handlers" in problem


def test_section_without_uuid_is_refused(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[accounts]\nname = x\n")
    assert problems_of(config_dir) == [
        f"{path}:8: [accounts] expected [server] or [KIND/UUID], for example [accounts/7d1c5a0e]"
    ]


def test_not_yet_implemented_kind_says_so(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("\n[transfers/nightly]\nname = x\n")
    (problem,) = problems_of(config_dir)
    assert "ferryd does not implement [transfers/...] sections yet" in problem


def test_unknown_option_is_refused_with_its_line(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[event-handlers/log]\ntype = local-file\nrotate_evry = 5\n")
    assert problems_of(config_dir) == [
        f"{path}:10: [event-handlers/log] rotate_evry: unknown option"
    ]


def test_missing_type_is_reported_at_the_section_header(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini("\n[event-handlers/log]\nname = x\n")
    assert problems_of(config_dir) == [
        f"{path}:8: [event-handlers/log] type: missing required option"
    ]


def test_missing_required_account_name(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[accounts/a1]\npassword =\n")
    assert problems_of(config_dir) == [f"{path}:8: [accounts/a1] name: missing required option"]


def test_unknown_type_lists_supported_types(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[event-handlers/log]\ntype = carrier-pigeon\n")
    assert problems_of(config_dir) == [
        f"{path}:9: [event-handlers/log] type: unknown type 'carrier-pigeon' for "
        "event-handlers; ferryd supports: local-file, standard-stream"
    ]


def test_unknown_variable_in_path_and_template(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("""
        [event-handlers/log]
        type = local-file
        path = log/{host.nmae}.log
        entry_content = {acount.name} {message}
    """)
    found = problems_of(config_dir)
    assert found[0].startswith(
        f"{path}:10: [event-handlers/log] path: unknown variable {{host.nmae}}"
    )
    assert found[1].startswith(
        f"{path}:11: [event-handlers/log] entry_content: unknown variable {{acount.name}}"
    )


def test_every_problem_is_reported_not_just_the_first(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
        [event-handlers/a]
        type = local-file
        enabled = maybe

        [event-handlers/b]
        type = local-file
        rotate_count = -2
    """)
    assert len(problems_of(config_dir)) == 2


def test_override_replaces_single_options_and_adds_sections(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
        [event-handlers/log]
        type = local-file
        path = log/shared.log
        rotate_count = 5
    """)
    (config_dir / "server.override.ini").write_text(
        "[event-handlers/log]\npath = log/{host.name}.log\n\n"
        "[event-handlers/console]\ntype = standard-stream\n"
    )
    configuration = load_configuration(config_dir, node="n2")
    model = configuration.sections[("event-handlers", "log")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert model.path.text == "log/{host.name}.log"
    assert model.rotate_count == 5
    assert ("event-handlers", "console") in configuration.sections


def test_errors_in_override_name_the_override_file(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("\n[event-handlers/log]\ntype = local-file\n")
    override = config_dir / "server.override.ini"
    override.write_text("[event-handlers/log]\n\nrotate_count = many\n")
    assert problems_of(config_dir) == [
        f"{override}:3: [event-handlers/log] rotate_count: expected a whole number, got 'many'"
    ]


def test_node_local_override_applies_after_shared_override(
    write_ini: WriteIni, config_dir: Path, tmp_path: Path
) -> None:
    write_ini("\n[event-handlers/log]\ntype = local-file\nrotate_count = 1\n")
    (config_dir / "server.override.ini").write_text("[event-handlers/log]\nrotate_count = 2\n")
    local = tmp_path / "node.ini"
    local.write_text("[event-handlers/log]\nrotate_count = 3\n")
    configuration = load_configuration(config_dir, overrides=[local])
    model = configuration.sections[("event-handlers", "log")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert model.rotate_count == 3


def test_missing_main_file_is_one_clear_problem(config_dir: Path) -> None:
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{config_dir / 'server.ini'}: ")
    assert "No such file" in problem or "not found" in problem or "cannot read" in problem


def test_account_group_must_exist(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[accounts/a1]\nname = acme\ngroup = partners\n")
    assert problems_of(config_dir) == [
        f"{path}:10: [accounts/a1] group: no [groups/partners] section is defined"
    ]


def test_two_accounts_with_one_name_are_refused(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("\n[accounts/a1]\nname = acme\n\n[accounts/a2]\nname = acme\n")
    assert problems_of(config_dir) == [
        f"{path}:12: [accounts/a2] name: name 'acme' is already used by [accounts/a1]"
    ]


def test_server_authentications_must_exist(write_ini: WriteIni, config_dir: Path) -> None:
    path = write_ini("", base="[server]\nauthentications = ldap-1\n")
    assert problems_of(config_dir) == [
        f"{path}:2: [server] authentications: no [authentications/ldap-1] section is defined"
    ]


def test_default_group_exists_even_when_not_written(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("\n[accounts/a1]\nname = acme\n")
    configuration = load_configuration(config_dir)
    assert configuration.group("DEFAULT_GROUP") is not None


def test_cluster_activation_all_cannot_be_mixed(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("\n[event-handlers/log]\ntype = local-file\ncluster_activation = all, n1\n")
    (problem,) = problems_of(config_dir)
    assert "cluster_activation: 'all' already covers every node" in problem


def test_empty_value_differs_from_missing(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("\n[accounts/a1]\nname = acme\ngroup =\n")
    configuration = load_configuration(config_dir)
    found = configuration.account_named("acme")
    assert found is not None
    assert found[1].group == ()
    write_ini("\n[accounts/a1]\nname = acme\n")
    found = load_configuration(config_dir).account_named("acme")
    assert found is not None
    assert found[1].group == ("DEFAULT_GROUP",)


def test_relative_paths_resolve_against_the_configuration_folder(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini()
    configuration = load_configuration(config_dir)
    assert configuration.resolve_path("log/x.log") == config_dir / "log" / "x.log"
    assert configuration.resolve_path("/var/log/x.log") == Path("/var/log/x.log")

"""The example of docs/authentication-ldap.md is a configuration ferryd loads and starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from docblocks import doc_blocks
from tests.integration.testpki import CertificateAuthority

from ferryd.auth.methods.ldap import LdapAuthentication
from ferryd.config.configuration import Configuration
from ferryd.config.loader import load_configuration
from ferryd.config.models import LdapAuthenticationModel, SshServiceModel
from ferryd.events.bus import EventBus
from ferryd.events.event import ServerRef
from ferryd.lifecycle import ComponentContext, State

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "authentication-ldap.md"
METHOD = ("authentications", "corporate-ldap")


@pytest.fixture
def configuration(tmp_path: Path) -> Configuration:
    (example,) = doc_blocks(GUIDE)
    (tmp_path / "server.ini").write_text(example)
    return load_configuration(tmp_path, node="node-a")


def method(configuration: Configuration) -> LdapAuthentication:
    model = configuration.sections[METHOD].model
    assert isinstance(model, LdapAuthenticationModel)
    bus = EventBus(ServerRef("server-uuid", "sftp-gateway", "node-a"))
    context = ComponentContext(bus, *METHOD, lambda: configuration)
    return LdapAuthentication(model, context)


def test_the_example_loads_with_the_options_the_guide_describes(
    configuration: Configuration,
) -> None:
    model = configuration.sections[METHOD].model
    assert isinstance(model, LdapAuthenticationModel)
    assert (model.address, model.port, model.secure_connection) == ("ldap.example.com", 636, True)
    assert model.bind_dn_type == "relative"
    assert model.bind_dn == ("ou=people,dc=example,dc=com", "ou=partners,dc=example,dc=com")
    assert model.search_filter == "(!(employeeType=suspended))"
    assert model.home_folder_attribute == "uid, /srv/sftp/{uid}"
    assert [(r.attribute, r.groups) for r in model.group_mapping] == [
        ("departmentNumber", ("finance",)),
        ("employeeType", ("contractors",)),
    ]
    referenced = {g for r in model.group_mapping for g in r.groups} | set(model.base_groups)
    assert referenced == {"finance", "contractors", "staff"}
    assert all(configuration.group(uuid) is not None for uuid in referenced)
    service = configuration.sections[("services", "sftp")].model
    assert isinstance(service, SshServiceModel)
    assert service.authentications == ("corporate-ldap", "DEFAULT-AUTHENTICATION")


async def test_the_example_starts_once_its_ca_file_is_there(
    configuration: Configuration,
) -> None:
    # Without ldap-ca.pem next to server.ini, the start fails naming the option.
    with pytest.raises(ValueError, match=r"tls_trusted_certificates: .*ldap-ca\.pem does not"):
        await method(configuration).start()
    CertificateAuthority.create("example CA").write(configuration.config_dir / "ldap-ca.pem")
    started = method(configuration)
    await started.start()  # the directory is not contacted at start
    assert started.state is State.RUNNING
    await started.stop(1.0)
    assert started.state is State.STOPPED

"""Which folders readiness checks: where members' homes are made, for enabled groups only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ferryd.config.loader import load_configuration
from ferryd.health.readiness import storage_folders

WriteIni = Callable[..., Path]


def test_homes_of_enabled_groups_are_checked_and_a_disabled_group_is_not(
    write_ini: WriteIni, config_dir: Path
) -> None:
    """A disabled group logs nobody in: its missing folder (an old mount, say) must not take
    the node out of the balancer."""
    write_ini(
        "\n[groups/partners]\nname = partners\nhome_folder_path = /srv/partners\n"
        "\n[groups/shared]\nname = shared\nhome_folder_path = ${SHARED}/srv/drop\n"
        "\n[groups/retired]\nname = retired\nenabled = no\nhome_folder_path = /mnt/gone\n"
    )
    folders = storage_folders(load_configuration(config_dir))
    assert Path("/srv/partners") in folders  # members get /srv/partners/${USER}
    assert Path("/srv/drop") in folders  # one folder for every member
    assert not [f for f in folders if f.is_relative_to("/mnt/gone")], folders

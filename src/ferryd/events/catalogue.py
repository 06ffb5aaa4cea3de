"""Every event ferryd emits: id, groups, message template and data fields, in one table.

The table is the single source of truth: the bus refuses ids that are not here, handler
templates are validated against the fields declared here, and ``docs/events.md`` is
rendered from it (``ferryd events --markdown``), so documentation cannot drift.

Ids follow SFTPPlus's ranges: 20xxx process, configuration and authentication; 30xxx
SSH/SFTP/SCP; 40xxx HTTP; 50xxx administration; 60xxx transfers. Where SFTPPlus documents
an id for the same meaning we reuse it; ids of 20250 and above are ferryd's own.
Message templates are ``%(name)s`` templates filled from the event's data, as in SFTPPlus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventDefinition:
    id: str
    groups: frozenset[str]
    template: str
    fields: tuple[str, ...]
    description: str


def _define(
    id: str, groups: Iterable[str], template: str, fields: Iterable[str], description: str
) -> EventDefinition:
    return EventDefinition(id, frozenset(groups), template, tuple(fields), description)


_DEFINITIONS: tuple[EventDefinition, ...] = (
    _define(
        "20000",
        ["debug", "informational"],
        "%(details)s",
        ["details"],
        "Debug detail, only emitted for components with `debug = yes`.",
    ),
    _define(
        "20001",
        ["process", "operational", "informational"],
        "Starting ferryd %(product_version)s as node %(node_name)s using %(config_path)s.",
        ["product_version", "node_name", "config_path"],
        "The process is starting; configuration was read and is about to be applied.",
    ),
    _define(
        "20002",
        ["process", "operational", "informational"],
        "ferryd is shutting down (%(reason)s).",
        ["reason"],
        "The process is stopping: components are drained and stopped next.",
    ),
    _define(
        "20004",
        ["process", "failure", "failure-high"],
        "ferryd could not start: %(reason)s",
        ["reason"],
        "Start-up failed; the process exits with a non-zero status.",
    ),
    _define(
        "20010",
        ["process", "configuration", "failure", "failure-high"],
        "Configuration refused, the running configuration is kept: %(problem)s",
        ["problem", "path", "line", "section", "option", "location", "reason", "problems"],
        "A new configuration failed validation. `problems` lists every problem found; the "
        "message names the first. The last good configuration keeps running.",
    ),
    _define(
        "20012",
        ["component-activation", "operational", "informational"],
        "%(kind)s %(type)s %(name)s restarted to apply changed options %(options)s.",
        ["kind", "type", "name", "options"],
        "A component could not apply a change in place and was stopped and started again.",
    ),
    _define(
        "20066",
        ["component-activation", "failure", "failure-high"],
        "%(kind)s %(type)s %(name)s stopped after %(count)s consecutive failures.",
        ["kind", "type", "name", "count"],
        "A handler reached its `fail_after_errors` limit and was stopped.",
    ),
    _define(
        "20143",
        ["operational", "failure", "failure-specific"],
        "Could not rotate log file %(path)s: %(reason)s",
        ["path", "reason"],
        "Rotating a `local-file` log failed; entries keep going to the current file.",
    ),
    _define(
        "20156",
        ["component-activation", "operational", "success"],
        "%(kind)s %(type)s %(name)s started.",
        ["kind", "type", "name", "family"],
        "A component started.",
    ),
    _define(
        "20157",
        ["component-activation", "operational", "success"],
        "%(kind)s %(type)s %(name)s stopped.",
        ["kind", "type", "name", "family"],
        "A component stopped.",
    ),
    _define(
        "20158",
        ["component-activation", "operational", "failure", "failure-high"],
        "%(kind)s %(type)s %(name)s failed to start: %(reason)s",
        ["kind", "type", "name", "family", "reason"],
        "A component could not start; the others keep running.",
    ),
    _define(
        "20159",
        ["component-activation", "operational", "failure", "failure-high"],
        "%(kind)s %(type)s %(name)s failed to stop cleanly: %(reason)s",
        ["kind", "type", "name", "family", "reason"],
        "A component raised an error while stopping; it is considered stopped.",
    ),
    _define(
        "20174",
        ["operational", "failure", "failure-specific"],
        "Event handler %(name)s failed to handle event %(event_id)s: %(reason)s",
        ["name", "event_id", "reason"],
        "One event could not be handled; the handler goes on with the next one.",
    ),
    _define(
        "20175",
        ["operational", "success"],
        "Log file %(source_path)s rotated to %(path)s (%(size)s bytes).",
        ["source_path", "path", "size"],
        "A `local-file` log was rotated by size or time.",
    ),
    _define(
        "20176",
        ["operational", "success"],
        "Log file %(source_path)s truncated in place (%(size)s bytes).",
        ["source_path", "size"],
        "A `local-file` log with `rotate_count = -1` was truncated.",
    ),
    _define(
        "20181",
        ["process", "operational", "success"],
        "ferryd %(product_version)s started as node %(node_name)s (pid %(pid)s).",
        ["product_version", "node_name", "pid"],
        "Start-up is complete: every enabled component was started (or reported a failure).",
    ),
    _define(
        "20250",
        ["process", "configuration", "operational", "success"],
        "Configuration generation %(generation)s applied from %(path)s: %(started)s started, "
        "%(stopped)s stopped, %(reconfigured)s reconfigured, %(unchanged)s unchanged, "
        "%(failed)s failed to start.",
        ["generation", "path", "started", "stopped", "reconfigured", "unchanged", "failed"],
        "A new configuration was validated and reconciled with the running components. A "
        "component that failed to start is reported by 20158; a changed one that failed to "
        "restart keeps running with its previous options.",
    ),
    _define(
        "20251",
        ["process", "configuration", "operational", "informational"],
        "Configuration reload requested (%(reason)s).",
        ["reason"],
        "A reload was asked for, for example by SIGHUP; 20250 or 20010 follows.",
    ),
    _define(
        "20252",
        ["operational", "failure", "failure-specific"],
        "Event handler %(name)s dropped %(count)s events because its queue of %(capacity)s "
        "was full.",
        ["name", "count", "capacity"],
        "A handler could not keep up: events were dropped rather than slowing the server. "
        "Reported once the handler catches up.",
    ),
    _define(
        "20253",
        ["component-activation", "operational", "informational"],
        "%(kind)s %(type)s %(name)s is not started on node %(node_name)s "
        "(cluster_activation = %(cluster_activation)s).",
        ["kind", "type", "name", "node_name", "cluster_activation"],
        "A component is configured but placed on other nodes only.",
    ),
    _define(
        "20254",
        ["operational", "informational"],
        "Log file %(path)s reopened (%(reason)s).",
        ["path", "reason"],
        "A `local-file` handler reopened its file, after SIGHUP or an external rotation.",
    ),
)

CATALOGUE: dict[str, EventDefinition] = {d.id: d for d in _DEFINITIONS}

# Names a handler template may always use, whatever the event.
BASE_FIELDS: tuple[str, ...] = (
    "id",
    "uuid",
    "message",
    "account",
    "component",
    "server",
    "host",
    "timestamp",
    "data",
    "data_json",
    "lf",
    "cr",
)


def definition(event_id: str) -> EventDefinition:
    """The definition of ``event_id``; a KeyError means a programming error, not bad input."""
    return CATALOGUE[event_id]


def data_fields() -> frozenset[str]:
    """Every data member some event carries: these are valid top-level template names too."""
    return frozenset(f for d in _DEFINITIONS for f in d.fields)

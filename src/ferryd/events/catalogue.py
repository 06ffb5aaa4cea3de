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
        "20005",
        ["authentication", "security", "session", "failure"],
        "Login of %(username)s from %(address)s blocked by %(rule)s: %(reason)s",
        ["username", "credentials_type", "address", "rule", "reason"],
        "A security policy (or an `ip-time-ban` method) refused the client's address: it is "
        "banned, or the policy's `source_ip_filter` denies it. With "
        "`block_source_at_connection = yes` this is reported when the connection is dropped, "
        "and `username` is empty.",
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
        "20042",
        ["authenticated", "session", "file-operation", "operation-create-folder", "success"],
        "Home folder %(path)s created for %(username)s.",
        ["username", "path"],
        "A missing home folder (or virtual folder target) was created at login "
        "(`create_home_folder = yes`).",
    ),
    _define(
        "20067",
        ["authentication", "session", "failure"],
        "Login of %(username)s refused: home folder unusable: %(reason)s",
        ["username", "reason"],
        "The account authenticated but its home folder is missing, cannot be created, or a "
        "virtual folder collides with a real one; the session is closed.",
    ),
    _define(
        "20081",
        ["authentication", "session", "failure"],
        "No authentication method knows %(username)s (%(credentials_type)s).",
        ["username", "credentials_type", "reason"],
        "Every method in the service's list answered 'unknown user': the login fails.",
    ),
    _define(
        "20143",
        ["operational", "failure", "failure-specific"],
        "Could not rotate log file %(path)s: %(reason)s",
        ["path", "reason"],
        "Rotating a `local-file` log failed; entries keep going to the current file.",
    ),
    _define(
        "20111",
        ["authentication", "session", "informational"],
        "%(method_type)s method %(method_name)s skipped for %(username)s: %(reason)s.",
        ["username", "credentials_type", "method_name", "method_type", "reason"],
        "A method in the list is disabled, stopped or placed on other nodes; the next one "
        "is asked.",
    ),
    _define(
        "20136",
        ["authentication", "security", "session", "failure"],
        "Login of %(username)s from %(address)s forbidden by %(rule)s: %(reason)s",
        ["username", "credentials_type", "address", "rule", "reason"],
        "The login name is denied by a security policy's `deny_usernames` (or a "
        "`deny-username` method); no method was asked.",
    ),
    _define(
        "20137",
        ["authentication", "authenticated", "session", "success"],
        "%(username)s authenticated with %(credentials_type)s by %(method_type)s method "
        "%(method_name)s (groups %(groups)s).",
        ["username", "credentials_type", "method_name", "method_type", "groups"],
        "A login succeeded.",
    ),
    _define(
        "20142",
        ["authentication", "session", "failure"],
        "Login of %(username)s with %(credentials_type)s rejected by %(method_type)s method "
        "%(method_name)s: %(reason)s",
        ["username", "credentials_type", "method_name", "method_type", "reason"],
        "A method rejected the login: wrong password or key, disabled or expired account, "
        "refused source address, credential type not allowed (`required_credentials`).",
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
        "A component could not start, or could not apply a changed configuration (it then "
        "keeps running with its previous options, and the next reload tries again); the "
        "others keep running.",
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
        "Event handler %(name)s failed to handle %(count)s event(s) from %(event_id)s on: "
        "%(reason)s",
        ["name", "event_id", "count", "reason"],
        "One delivery could not be made: `count` events, the first being `event_id`, are "
        "not retried (a file may hold some of their lines already, a retry would repeat "
        "them). The handler backs off and goes on with the next events.",
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
        "20197",
        ["configuration", "operational", "informational"],
        "Plain-text password of account %(account_name)s replaced by its hash in %(path)s.",
        ["account_name", "path", "line"],
        "An account had a plain-text `password`; ferryd stored its argon2id hash in the file "
        "in place (the plain text never reaches a log).",
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
    _define(
        "20255",
        ["authentication", "session", "informational"],
        "%(method_type)s method %(method_name)s does not know %(username)s (%(reason)s); "
        "asking the next method.",
        ["username", "credentials_type", "method_name", "method_type", "reason"],
        "A method answered 'unknown user' (HTTP 401, not in its file or groups).",
    ),
    _define(
        "20256",
        ["authentication", "session", "failure", "failure-high"],
        "Login of %(username)s refused: %(method_type)s method %(method_name)s could not "
        "decide: %(reason)s",
        ["username", "credentials_type", "method_name", "method_type", "reason"],
        "A method could not answer (its server is unreachable or timed out, its answer is "
        "invalid, or it is not running). The login is refused without asking later methods: "
        "the fault is the server's, not the client's, and it does not count toward a ban.",
    ),
    _define(
        "20257",
        ["authentication", "security", "failure"],
        "Address %(address)s banned by %(scope)s for %(interval)s seconds after %(failures)s "
        "failed logins (last: %(reason)s).",
        ["address", "scope", "failures", "interval", "reason"],
        "Consecutive failed password logins reached the ban threshold; logins (and, with "
        "`block_source_at_connection`, connections) from the address are refused until the "
        "ban ends or is lifted with `ferryd bans remove`.",
    ),
    _define(
        "20258",
        ["authentication", "configuration", "operational", "success"],
        "Accounts file %(path)s of %(method_name)s loaded: %(accounts)s accounts, "
        "%(groups)s groups.",
        ["method_name", "path", "accounts", "groups"],
        "A `local-file` method read its file (at start and after every change).",
    ),
    _define(
        "20259",
        ["authentication", "configuration", "failure", "failure-high"],
        "Accounts file refused, the previous accounts stay in force: %(problem)s",
        ["method_name", "path", "line", "problem", "problems"],
        "A `local-file` method's file is unreadable or invalid; `line` is the first problem's "
        "line and `problems` lists them all. Logins keep using the last good accounts.",
    ),
    _define(
        "20260",
        ["authentication", "operational", "failure"],
        "HTTP identity URL %(url)s suspended for %(interval)s seconds: %(reason)s",
        ["method_name", "url", "interval", "reason"],
        "An `http` method's URL failed (no connection, timeout, server error); the next URL "
        "is used until the interval ends.",
    ),
    _define(
        "20262",
        ["process", "operational", "informational"],
        "Health listener for node %(node_name)s on %(address)s:%(port)s.",
        ["node_name", "address", "port"],
        "The node answers `/health/live` and `/health/ready` (`health_port`); also after it "
        "moved to a new address or port.",
    ),
    _define(
        "20263",
        ["process", "operational", "informational"],
        "Draining node %(node_name)s: readiness fails now, listeners close in %(grace)s "
        "seconds, open sessions have %(timeout)s seconds to finish.",
        ["node_name", "grace", "timeout"],
        "SIGTERM, SIGINT or `ferryd drain`: the node leaves the load balancer before it "
        "stops. The grace period applies only with a health listener.",
    ),
    _define(
        "20264",
        ["process", "operational", "failure"],
        "Drain deadline reached: closing %(count)s open sessions.",
        ["count"],
        "Sessions still open `drain_timeout` seconds after draining began are closed; each "
        "gets its own closing event.",
    ),
    _define(
        "20265",
        ["process", "operational", "failure", "failure-high"],
        "Health listener cannot listen on %(address)s:%(port)s: %(reason)s",
        ["address", "port", "reason"],
        "A changed `health_address` or `health_port` could not be bound; the previous "
        "listener, if any, keeps answering.",
    ),
    _define(
        "20266",
        ["process", "operational", "failure"],
        "Cannot write the pid file %(path)s: %(reason)s",
        ["path", "reason"],
        "The node runs, but `ferryd drain` cannot find it; SIGTERM drains it the same way.",
    ),
    _define(
        "20267",
        ["component-activation", "configuration", "operational", "informational"],
        "%(kind)s %(type)s %(name)s applied the changed %(files)s.",
        ["kind", "type", "name", "family", "files"],
        "A file the component reads besides server.ini (SSH host keys, a CA bundle) "
        "changed and is used for new connections; open sessions carry on. A file that "
        "cannot be used is refused like a broken edit (20010) and the previous one stays in "
        "use.",
    ),
    _define(
        "20268",
        ["process", "operational", "failure", "failure-high"],
        "SSH service %(name)s cannot accept connections on %(address)s:%(port)s: %(reason)s",
        ["name", "address", "port", "reason"],
        "The process is out of file descriptors (`LimitNOFILE`, `ulimit -n`) or memory. "
        "New connections wait in the listen queue and accepting is retried every 0.1 s. "
        "Said once until it recovers (20269). The health listener shares the limit, so a "
        "balancer's probes fail too and the node leaves the pool meanwhile.",
    ),
    _define(
        "20269",
        ["process", "operational", "informational"],
        "SSH service %(name)s accepts connections again on %(address)s:%(port)s after "
        "%(duration)s seconds.",
        ["name", "address", "port", "duration"],
        "Accepting has worked for a second after a 20268; `duration` counts from the first "
        "failure.",
    ),
    _define(
        "20270",
        ["process", "operational", "security", "failure"],
        "Bans cannot be read from the state store %(location)s: %(reason)s",
        ["location", "reason"],
        "The once-a-second refresh of the ban list failed. Bans already known keep applying "
        "and new ones made here are still enforced here; bans made or lifted by other nodes "
        "are not seen until a read works again (20271). Said once per episode.",
    ),
    _define(
        "20271",
        ["process", "operational", "security", "informational"],
        "Bans are read from the state store %(location)s again after %(duration)s seconds.",
        ["location", "duration"],
        "The ban list refresh works again after a 20270.",
    ),
    _define(
        "20272",
        ["authentication", "security", "failure"],
        "Failed logins from %(address)s could not be %(action)s by %(scope)s: %(reason)s",
        ["username", "credentials_type", "address", "scope", "action", "reason"],
        "The state store refused the bookkeeping of a login (`counted`: a failed guess that "
        "now counts toward no ban; `forgiven`: a completed login whose earlier failures "
        "still count). The login itself was decided as usual. See 20270 for reads.",
    ),
    _define(
        "30011",
        ["ssh", "session", "authenticated", "success"],
        "%(subsystem)s session started for %(username)s in %(home)s.",
        ["subsystem", "username", "home"],
        "An authenticated client opened an SFTP or SCP session.",
    ),
    _define(
        "30012",
        ["ssh", "session", "authenticated", "success"],
        "%(subsystem)s session of %(username)s ended after %(duration)s seconds.",
        ["subsystem", "username", "duration"],
        "An SFTP or SCP session ended (the client closed it or the connection was cut; "
        "open uploads are handled as their `upload_mode` says).",
    ),
    _define(
        "30013",
        ["ssh", "session", "failure"],
        "SSH connection from %(address)s:%(port)s failed before login: %(reason)s",
        ["address", "port", "reason"],
        "Key exchange or algorithm negotiation failed, or the client left before logging in.",
    ),
    _define(
        "30014",
        ["ssh", "session", "informational"],
        "New SSH connection from %(address)s:%(port)s%(via)s.",
        ["address", "port", "via", "proxy_tlvs"],
        "A TCP connection was accepted by an SSH service. Behind a load balancer speaking "
        "the PROXY protocol, `address` is the real client and `via` names the balancer "
        "(` via 10.0.0.5:41234 (PROXY v2)`); `proxy_tlvs` holds the header's TLVs by name "
        "(`authority`, `alpn`, `unique_id`, `ssl_version`, `ssl_cn`, `netns`, other types "
        "as `0xNN`), values in text or hex.",
    ),
    _define(
        "30015",
        ["ssh", "session", "informational"],
        "SSH connection from %(address)s:%(port)s closed after %(duration)s seconds (%(reason)s).",
        ["address", "port", "duration", "reason"],
        "An SSH connection ended.",
    ),
    _define(
        "30016",
        ["ssh", "session", "informational"],
        "SSH connection of %(username)s closed after %(timeout)s idle seconds.",
        ["username", "timeout"],
        "No request arrived for `idle_connection_timeout` seconds.",
    ),
    _define(
        "30020",
        ["ssh", "file-operation", "operation-read", "success"],
        "%(username)s opened %(path)s for %(mode)s.",
        ["username", "path", "real_path", "file", "mode"],
        "A file was opened for reading (download).",
    ),
    _define(
        "30021",
        ["ssh", "file-operation", "operation-write", "success"],
        "%(username)s opened %(path)s for %(mode)s.",
        ["username", "path", "real_path", "file", "mode"],
        "A file was opened for writing (`writing`, `writing with append`, `reading and writing`).",
    ),
    _define(
        "30041",
        ["ssh", "file-operation", "operation-read", "failure"],
        "%(operation)s of %(path)s by %(username)s failed: %(reason)s",
        ["username", "operation", "path", "real_path", "file", "reason"],
        "A request was refused or failed: permission denied, no such file, outside the home "
        "folder, limit reached. `operation` names the request (open, stat, list, ...).",
    ),
    _define(
        "30042",
        ["ssh", "file-operation", "operation-write", "failure"],
        "Upload of %(path)s by %(username)s failed after %(size)s bytes: %(reason)s",
        ["username", "path", "real_path", "file", "size", "duration", "reason"],
        "An upload did not complete (connection cut, write error, limit): with `atomic` "
        "nothing was published; with `atomic-resumable` the partial file was.",
    ),
    _define(
        "30050",
        ["ssh", "file-operation", "success"],
        "%(username)s: %(operation)s %(path)s%(details)s",
        ["username", "operation", "path", "real_path", "file", "destination", "details"],
        "A change other than an upload: `rename` (with `destination`), `delete`, `mkdir`, "
        "`rmdir`, `setstat` (`details` lists attributes), `symlink`, `link`.",
    ),
    _define(
        "30051",
        ["ssh", "session", "failure"],
        "Connection from %(address)s:%(port)s refused: %(limit)s concurrent connections reached.",
        ["address", "port", "limit"],
        "`maximum_concurrent_connections` was reached; the connection is closed at once.",
    ),
    _define(
        "30067",
        ["ssh", "file-operation", "operation-read", "success"],
        "%(username)s downloaded %(path)s: %(size)s bytes in %(duration)s seconds.",
        ["username", "path", "real_path", "file", "size", "duration"],
        "A file opened only for reading was closed.",
    ),
    _define(
        "30068",
        ["ssh", "file-operation", "operation-write", "success"],
        "%(username)s uploaded %(path)s: %(size)s bytes in %(duration)s seconds.",
        ["username", "path", "real_path", "file", "size", "duration"],
        "An upload was closed and is durable and published under its final name.",
    ),
    _define(
        "30076",
        ["ssh", "component-activation", "operational", "informational"],
        "SSH service %(name)s listening on %(address)s:%(port)s.",
        ["name", "address", "port"],
        "The service is bound and accepts connections (also after a rebind).",
    ),
    _define(
        "30077",
        ["ssh", "session", "security", "failure"],
        "Connection from %(address)s:%(port)s refused: %(reason)s.",
        ["address", "port", "reason"],
        "The PROXY protocol header was missing (`proxy_protocol = required`), came from an "
        "address outside `proxy_protocol_trusted_sources`, was malformed, or did not arrive "
        "within `proxy_protocol_timeout`. `address` is the socket's peer.",
    ),
    _define(
        "30078",
        ["ssh", "session", "debug"],
        "Health probe (PROXY v2 LOCAL) from %(address)s:%(port)s closed.",
        ["address", "port"],
        "A load balancer's health check connected with a LOCAL header; it is not a client "
        "connection, so no other event follows.",
    ),
    _define(
        "50008",
        ["administration", "security", "informational"],
        "Ban of %(address)s by %(scope)s lifted by %(by)s.",
        ["address", "scope", "by"],
        "An administrator lifted a ban before its end (`ferryd bans remove`, here or on "
        "another node sharing the state store).",
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

"""The identity service's answer (reference 3.3): the account object of a 200, the message
of a 403. Everything a service can send is checked key by key, so a misspelt key or a wrong
type is refused with its name rather than silently meaning a default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass

from ferryd.auth.account import Account, external_account
from ferryd.config.configuration import Configuration
from ferryd.ini import format_csv

MAX_BODY = 1024 * 1024  # an identity answer is a few hundred bytes; refuse to buffer more
_MESSAGE_LIMIT = 300
_OS_ONLY = ("create_home_folder_owner", "create_home_folder_group")


# -- the 200 answer -------------------------------------------------------------------------


class InvalidAnswer(ValueError):
    """A body outside the contract; the message names the key at fault."""


@dataclass(frozen=True, slots=True)
class AccountAnswer:
    """A 200 body as account options in their INI text form (what ``external_account`` takes),
    plus what account sections cannot hold: the uuid and the home folder structure."""

    uuid: str | None = None
    options: dict[str, str] = dataclasses.field(default_factory=dict)
    home_structure: tuple[str, ...] | None = None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _text(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(f"{where}: expected a string, got {_kind(value)}")
    if not value.strip():
        raise InvalidAnswer(f"{where}: expected a non-empty string")
    if any(c in value for c in "\r\n\x00"):
        raise InvalidAnswer(f"{where}: line breaks and NUL characters are not allowed")
    return value.strip()


def _list(where: str, value: object) -> list[object]:
    if not isinstance(value, list):
        raise InvalidAnswer(f"{where}: expected a list, got {_kind(value)}")
    return value


def _home_folder_path(where: str, value: object) -> str | None:
    path = _text(where, value)
    if not path.startswith("/"):
        raise InvalidAnswer(f"{where}: expected an absolute path")
    return path


def _email(where: str, value: object) -> str | None:
    if not isinstance(value, str):
        raise InvalidAnswer(f"{where}: expected a comma-separated string, got {_kind(value)}")
    return _text(where, value) if value.strip() else None


def _create_home_folder(where: str, value: object) -> str | None:
    if not isinstance(value, bool):
        raise InvalidAnswer(f"{where}: expected true or false, got {_kind(value)}")
    return "yes" if value else "no"


def _virtual_folders(where: str, value: object) -> str | None:
    lines = []
    for index, item in enumerate(_list(where, value)):
        pair = _list(f"{where}[{index}]", item)
        if len(pair) != 2:
            raise InvalidAnswer(f"{where}[{index}]: expected [virtual path, real path]")
        virtual = _text(f"{where}[{index}][0]", pair[0])
        real = _text(f"{where}[{index}][1]", pair[1])
        if "," in virtual:
            raise InvalidAnswer(f"{where}[{index}][0]: a virtual path cannot contain a comma")
        lines.append(f"{virtual}, {real}")
    return "\n".join(lines) or None


def _permissions(where: str, value: object) -> str | None:
    """``[[global...], [path-expression, permission...], ...]``; an empty global list denies
    everything outside the path rules."""
    rows = _list(where, value)
    lines = []
    for index, row in enumerate(rows):
        items = [
            _text(f"{where}[{index}][{n}]", v)
            for n, v in enumerate(_list(f"{where}[{index}]", row))
        ]
        if index == 0:
            lines.append(format_csv(items) if items else "deny-full-control")
            continue
        if len(items) < 2:
            raise InvalidAnswer(f"{where}[{index}]: expected [path-expression, permission, ...]")
        lines.append(format_csv(items))
    return "\n".join(lines) or None


def _structure(where: str, value: object) -> tuple[str, ...]:
    folders = []
    for index, item in enumerate(_list(where, value)):
        path = _text(f"{where}[{index}]", item)
        if path.startswith("/") or ".." in path.split("/"):
            raise InvalidAnswer(f"{where}[{index}]: expected a path relative to the home folder")
        folders.append(path)
    return tuple(folders)


_OPTIONS: dict[str, Callable[[str, object], str | None]] = {
    "home_folder_path": _home_folder_path,
    "email": _email,
    "group": _text,
    "create_home_folder": _create_home_folder,
    "virtual_folders": _virtual_folders,
    "permissions": _permissions,
}


def read_answer(document: object) -> AccountAnswer:
    """Check a decoded 200 body against the contract: keys are lower-case, case-sensitive,
    and an unknown one is an error (a misspelt key must not silently mean a default)."""
    if not isinstance(document, dict):
        raise InvalidAnswer(f"expected a JSON object, got {_kind(document)}")
    for key in document:
        if key != "account":
            raise InvalidAnswer(f"unknown key {key!r} (only 'account' is expected)")
    if "account" not in document:
        raise InvalidAnswer("missing key 'account'")
    account = document["account"]
    if not isinstance(account, dict):
        raise InvalidAnswer(f"account: expected an object, got {_kind(account)}")
    uuid: str | None = None
    structure: tuple[str, ...] | None = None
    options: dict[str, str] = {}
    for key, value in account.items():
        where = f"account.{key}"
        if key in _OS_ONLY:
            raise InvalidAnswer(f"{where}: an OS-account option, not supported by ferryd")
        if key == "uuid":
            uuid = _text(where, value)
        elif key == "home_folder_structure":
            structure = _structure(where, value)
        elif key in _OPTIONS:
            text = _OPTIONS[key](where, value)
            if text is not None:
                options[key] = text
        else:
            raise InvalidAnswer(f"{where}: unknown key")
    return AccountAnswer(uuid, options, structure)


def parse_answer(body: bytes) -> AccountAnswer:
    """A raw 200 body: UTF-8 JSON ``{"account": {...}}``."""
    if len(body) > MAX_BODY:
        raise InvalidAnswer(f"the body is larger than {MAX_BODY} bytes")
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidAnswer("the body is not UTF-8") from None
    except (ValueError, RecursionError) as error:
        raise InvalidAnswer(f"the body is not JSON ({error})") from None
    return read_answer(document)


def build_account(
    configuration: Configuration,
    username: str,
    peer_address: str,
    answer: AccountAnswer | None,
) -> Account:
    """The session's account: DEFAULT_GROUP's for a 204 (``answer`` None), else the answer's
    options resolved like a configured account. Raises AccountRefused naming the option."""
    if answer is None:
        return external_account(
            configuration, name=username, uuid=username, peer_address=peer_address
        )
    account = external_account(
        configuration,
        name=username,
        uuid=answer.uuid or username,
        peer_address=peer_address,
        options=answer.options,
    )
    if answer.home_structure is not None:
        account = dataclasses.replace(account, home_structure=answer.home_structure)
    return account


def refusal_message(body: bytes, secrets: tuple[str, ...] = ()) -> str:
    """A 403's message: the ``message`` of a JSON object body, else the body text; shortened
    to one line, after ``secrets`` are masked so no part of one survives the cut."""
    text = body[:MAX_BODY].decode("utf-8", errors="replace").strip()
    with contextlib.suppress(ValueError, RecursionError):
        document = json.loads(text)
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            text = document["message"]
    text = " ".join(scrub(text, *secrets).split())
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return text or "no message given"


def scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text

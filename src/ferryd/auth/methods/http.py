"""``http`` authentication: an HTTP identity service decides each login (reference 3.3).

Each attempt is one JSON ``POST`` to the first usable URL, and the status is the decision: 204
accepts with DEFAULT_GROUP, 200 accepts with the account its body describes, 401 leaves the
login to the next method, 403 and any other status reject. A URL that cannot answer (no
connection, timeout, untrusted certificate, a 5xx status) is suspended for
``url_suspend_interval`` (event 20260) and the next one is asked; when none answers, the method
cannot decide (``Outcome.FAILED``). A 5xx counts as "cannot answer" rather than as a rejection:
a server error says nothing about the client, and another URL may well answer.

The login's password is in the request body only: never in a reason, event or exception.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ferryd.auth.account import AccountRefused
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.http_answer import (
    MAX_BODY,
    InvalidAnswer,
    build_account,
    parse_answer,
    refusal_message,
    scrub,
)
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models.authentications import HttpAuthenticationModel
from ferryd.config.problems import Problem
from ferryd.health.reachability import reachable
from ferryd.lifecycle import Component, ComponentContext, Readiness, Reconfigured, State
from ferryd.tls_trust import resolve_trust, trust_file

CONTRACT_STATUSES = frozenset({200, 204, 401, 403})
PROBE_USERNAME = "ferryd-test-at-start"


# -- the request --------------------------------------------------------------------------


def key_blob(public_key_line: str) -> str:
    """The base64 blob of an OpenSSH public key line (its second field)."""
    fields = public_key_line.split()
    return fields[1] if len(fields) >= 2 else ""


def request_body(credentials: Credentials, server_uuid: str) -> dict[str, Any]:
    """The contract's JSON document; the content is the password, or the key's blob."""
    if credentials.type == "password":
        content = credentials.password
    else:
        content = key_blob(credentials.public_key)
    peer, service = credentials.peer, credentials.service
    return {
        "credentials": {
            "type": credentials.type,
            "username": credentials.username,
            "content": content,
            "peer": {
                "address": peer.address,
                "port": peer.port,
                "family": peer.family,
                "protocol": peer.protocol,
            },
            "creator": {
                "uuid": service.uuid if service else "",
                "type": service.type if service else "",
            },
        },
        "server": {"uuid": server_uuid},
    }


def probe_body(method_uuid: str, server_uuid: str) -> dict[str, Any]:
    """The ``test_at_start`` request: a password login of a name no one should have, with an
    empty password, so any working service answers 401 or 403 without side effects."""
    return {
        "credentials": {
            "type": "password",
            "username": PROBE_USERNAME,
            "content": "",
            "peer": {"address": "127.0.0.1", "port": 0, "family": "IPv4", "protocol": "TCP"},
            "creator": {"uuid": method_uuid, "type": "test-at-start"},
        },
        "server": {"uuid": server_uuid},
    }


def request_headers(model: HttpAuthenticationModel) -> httpx.Headers:
    """Custom headers, then Basic authentication (which replaces their Authorization), then
    the contract's content type, which no custom header can change."""
    headers = httpx.Headers({"Accept": "application/json"})
    for name, value in model.headers:
        headers[name] = value
    if model.username or model.password:
        token = base64.b64encode(f"{model.username}:{model.password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    headers["Content-Type"] = "application/json; charset=utf-8"
    return headers


def shown(url: str) -> str:
    """The URL as reasons and events show it: without any ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


# -- transport ------------------------------------------------------------------------------


def tls_verification(
    model: HttpAuthenticationModel, configuration: Configuration
) -> ssl.SSLContext | bool:
    """What httpx verifies server certificates with; blocking (reads CA files).

    Raises ValueError when the configured CA file cannot be used."""
    context = resolve_trust(configuration, model.tls_trusted_certificates).context()
    return False if context is None else context


class _UrlFailure(Exception):
    """A URL that could not answer; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first (httpx wraps httpcore wraps the OS)."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _os_reason(error: BaseException) -> str | None:
    """The innermost OS error's own words: "Connection refused", not "All connection
    attempts failed"."""
    for cause in reversed(_chain(error)):
        if isinstance(cause, OSError) and cause.errno is not None:
            if cause.errno > 0:
                return os.strerror(cause.errno)
            return cause.strerror or str(cause)
    return None


def describe_failure(error: BaseException) -> str:
    """Why a request failed, in words an operator can act on."""
    chain = _chain(error)
    untrusted = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if untrusted is not None or "CERTIFICATE_VERIFY_FAILED" in str(error):
        detail = getattr(untrusted, "verify_message", "") or str(untrusted or error)
        return f"the server's TLS certificate is not trusted ({detail})"
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect: {_os_reason(error) or text}"
    if isinstance(error, httpx.HTTPError):
        return f"{type(error).__name__}: {text}"
    return text


@dataclass(frozen=True, slots=True)
class Reply:
    url: str
    status: int
    body: bytes


class _Client:
    """One httpx client and the requests using it, so a client replaced by ``reconfigure``
    closes once its last request ends instead of cutting it off."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._busy = 0
        self._retired = False
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[httpx.AsyncClient]:
        self._busy += 1
        self._idle.clear()
        try:
            yield self.http
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()
                if self._retired:
                    await self.http.aclose()

    async def retire(self) -> None:
        self._retired = True
        if self._busy == 0:
            await self.http.aclose()

    async def close(self, drain_timeout: float) -> None:
        if self._busy and drain_timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
        self._retired = True
        await self.http.aclose()


async def _read_body(response: httpx.Response) -> bytes:
    """At most MAX_BODY + 1 bytes: enough to tell an oversized body without holding it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)[: MAX_BODY + 1]


# -- the method -------------------------------------------------------------------------------


class HttpAuthentication(Component[HttpAuthenticationModel]):
    """Asks the identity service at each login; one httpx client per method instance."""

    def __init__(self, model: HttpAuthenticationModel, context: ComponentContext) -> None:
        super().__init__(model, context)
        self._client: _Client | None = None
        self._headers = request_headers(self.model)
        self._suspended: dict[str, float] = {}  # URL -> monotonic time its suspension ends

    @classmethod
    def preflight(cls, section: Section, configuration: Configuration) -> list[Problem]:
        """An unreadable CA file is a configuration problem, shown by ``ferryd check``."""
        model = section.model
        assert isinstance(model, HttpAuthenticationModel)
        try:
            resolve_trust(configuration, model.tls_trusted_certificates)
        except ValueError as error:
            origin = section.options.get("tls_trusted_certificates", section.header)
            option = "tls_trusted_certificates"
            return [Problem(origin.path, origin.line, str(error), section.title, option)]
        return []

    async def _new_client(self, model: HttpAuthenticationModel) -> _Client:
        verify = await asyncio.to_thread(tls_verification, model, self.configuration)
        http = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(model.timeout),
            trust_env=False,  # no proxy or netrc from the environment: only server.ini counts
            follow_redirects=False,
        )
        return _Client(http)

    async def start(self) -> None:
        self.state = State.STARTING
        self._client = await self._new_client(self.model)
        if self.model.test_at_start:
            try:
                await self._probe()
            except BaseException:
                await self._client.close(0)
                self._client = None
                self.state = State.FAILED
                raise
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPING
        if self._client is not None:
            await self._client.close(drain_timeout)
            self._client = None
        self.state = State.STOPPED

    @classmethod
    def referenced_files(
        cls, model: HttpAuthenticationModel, configuration: Configuration
    ) -> list[Path]:
        return trust_file(configuration, model.tls_trusted_certificates)

    async def readiness(self) -> Readiness | None:
        if not self.model.readiness_check:
            return None
        targets = []
        for url in self.model.url:
            parts = urlsplit(url)
            default = 443 if parts.scheme == "https" else 80
            targets.append((parts.hostname or "", parts.port or default))
        return await reachable(targets)

    async def reconfigure(self, model: HttpAuthenticationModel) -> Reconfigured:
        """A new client for the new options; logins in flight finish on the old one. URLs
        get a fresh start, since the change may be what fixes them."""
        client = await self._new_client(model)  # a bad CA file raises: the old one stays
        old, self._client = self._client, client
        self.model = model
        self._headers = request_headers(model)
        self._suspended.clear()
        if old is not None:
            await old.retire()
        return Reconfigured.APPLIED

    async def authenticate(self, credentials: Credentials) -> Decision:
        body = request_body(credentials, self.configuration.server.uuid)
        outcome = await self._ask(body)
        if isinstance(outcome, list):
            return Decision(
                Outcome.FAILED, "no identity service URL answered: " + "; ".join(outcome)
            )
        decision = self._decide(credentials, outcome)
        reason = scrub(decision.reason, credentials.password, self.model.password)
        return dataclasses.replace(decision, reason=reason)

    def _decide(self, credentials: Credentials, reply: Reply) -> Decision:
        where, status = shown(reply.url), reply.status
        if status == 401:
            return Decision(Outcome.UNKNOWN, f"{where} does not know the account (401)")
        if status == 403:
            message = refusal_message(reply.body, (credentials.password, self.model.password))
            return Decision(Outcome.REJECT, f"{where} refused the login (403): {message}")
        if status not in (200, 204):
            phrase = httpx.codes.get_reason_phrase(status)
            detail = f" ({phrase})" if phrase else ""
            return Decision(Outcome.REJECT, f"{where} answered with status {status}{detail}")
        try:
            answer = parse_answer(reply.body) if status == 200 else None
            account = build_account(
                self.configuration, credentials.username, credentials.peer.address, answer
            )
        except InvalidAnswer as error:
            return Decision(Outcome.FAILED, f"invalid response from {where}: {error}")
        except AccountRefused as error:
            return Decision(Outcome.REJECT, f"account from {where} refused: {error}")
        return Decision(Outcome.ACCEPT, "", account)

    async def _probe(self) -> None:
        """``test_at_start``: fail the start unless some URL answers with a contract status."""
        body = probe_body(self.context.uuid, self.configuration.server.uuid)
        outcome = await self._ask(body, usable=CONTRACT_STATUSES.__contains__)
        if isinstance(outcome, list):
            raise RuntimeError("test request failed: " + "; ".join(outcome))

    def _order(self) -> list[str]:
        """Available URLs in their order, then the suspended ones: when every URL is
        suspended they are still tried rather than the login refused untried."""
        now = time.monotonic()
        urls = self.model.url
        available = [url for url in urls if self._suspended.get(url, 0.0) <= now]
        return available + [url for url in urls if url not in available]

    def _suspend(self, url: str, reason: str) -> None:
        interval = self.model.url_suspend_interval
        if interval <= 0 or self.state not in (State.STARTING, State.RUNNING):
            return  # a request cut off by stop() says nothing about the URL
        now = time.monotonic()
        already = self._suspended.get(url, 0.0) > now
        self._suspended[url] = now + interval
        if not already:
            self.emit(
                "20260",
                method_name=self.ref.name,
                url=shown(url),
                interval=f"{interval:g}",
                reason=reason,
            )

    async def _ask(
        self, body: dict[str, Any], usable: Callable[[int], bool] = lambda status: True
    ) -> Reply | list[str]:
        """The first reply from a URL, or why each URL failed."""
        client = self._client
        if client is None:
            return ["the method is not running"]
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        failures: list[str] = []
        async with client.use() as http:
            for url in self._order():
                try:
                    reply = await self._post(http, url, content)
                except _UrlFailure as failure:
                    failures.append(f"{shown(url)}: {failure.reason}")
                    self._suspend(url, failure.reason)
                    continue
                self._suspended.pop(url, None)
                if usable(reply.status):
                    return reply
                failures.append(f"{shown(url)}: status {reply.status} is not in the contract")
        return failures

    async def _post(self, http: httpx.AsyncClient, url: str, content: bytes) -> Reply:
        timeout = self.model.timeout
        try:
            async with (
                asyncio.timeout(timeout),
                http.stream("POST", url, content=content, headers=self._headers) as response,
            ):
                data = await _read_body(response)
        except (TimeoutError, httpx.TimeoutException):
            raise _UrlFailure(f"no answer within {timeout:g} seconds") from None
        except Exception as error:  # any transport fault means this URL cannot answer now
            raise _UrlFailure(describe_failure(error)) from None
        status = response.status_code
        if status >= 500:
            phrase = httpx.codes.get_reason_phrase(status)
            raise _UrlFailure(f"server error {status}" + (f" ({phrase})" if phrase else ""))
        return Reply(url, status, data)

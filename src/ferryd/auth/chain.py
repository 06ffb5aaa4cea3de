"""The authentication chain (reference 3.1): methods in order until one accepts or rejects.

A disabled method is skipped; a method that should run but is not running (it failed to
start) aborts the login, because skipping it could let a less strict method decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.config.configuration import Configuration
from ferryd.config.models import ComponentModel
from ferryd.lifecycle import Component



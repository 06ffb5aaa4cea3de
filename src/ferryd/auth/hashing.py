"""Where password verification runs: never on the event loop, and in parallel across cores.

argon2-cffi and ``hashlib.pbkdf2_hmac`` release the interpreter lock while they work, so a
worker thread is enough. SHA-crypt (``$5$``/``$6$``) is Python driving ``hashlib`` through
thousands of rounds on small buffers; it holds the lock, so in threads concurrent logins
would take turns on one core. Those verifications go to a small process pool, one worker
per core, started at the first such login (accounts imported from /etc/shadow are the usual
reason to have them) and stopped with the server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from ferryd.auth.passwords import scheme_of, verify_password

_IN_PROCESSES = frozenset({"sha256-crypt", "sha512-crypt"})


class _Pool:
    """The process pool, made on first use."""

    executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            # forkserver: workers do not inherit the server's threads, sockets or memory.
            context = multiprocessing.get_context("forkserver")
            self.executor = ProcessPoolExecutor(os.cpu_count() or 1, mp_context=context)
        return self.executor

    def close(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_POOL = _Pool()


async def verify(stored: str, password: str) -> bool:
    """:func:`verify_password` off the loop; raises ``UnsupportedHash`` as it does."""
    if scheme_of(stored) in _IN_PROCESSES:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_POOL.get(), verify_password, stored, password)
    return await asyncio.to_thread(verify_password, stored, password)


async def close() -> None:
    """Stop the worker processes (the server is shutting down)."""
    await asyncio.to_thread(_POOL.close)

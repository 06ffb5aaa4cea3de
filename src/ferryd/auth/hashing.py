"""Where password verification runs: never on the event loop, and in parallel across cores.

argon2-cffi and ``hashlib.pbkdf2_hmac`` release the interpreter lock while they work, so a
worker thread is enough. SHA-crypt (``$5$``/``$6$``) is Python driving ``hashlib`` through
thousands of rounds on small buffers; it holds the lock, so in threads concurrent logins
would take turns on one core. Those verifications go to a small process pool, one worker
per usable core (at most :data:`MAX_WORKERS`), started at the first such login (accounts
imported from /etc/shadow are the usual reason to have them) and stopped with the server.

The workers come from a forkserver: they do not inherit the server's threads, sockets or
memory. Like any multiprocessing program, the process that starts them must guard its
entry point with ``if __name__ == "__main__"`` (``ferryd`` and ``python -m ferryd`` do); the
forkserver imports that main module once and every worker is forked from it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ferryd.auth.passwords import scheme_of, verify_password

MAX_WORKERS = 8
_IN_PROCESSES = frozenset({"sha256-crypt", "sha512-crypt"})


def _end_with(server_pid: int) -> None:
    """Run in each worker as it starts: exit when the server does, however it ends. A
    SIGKILL runs no shutdown, and nothing in the pool's pipes tells a forkserver's worker
    that the server is gone, so it (and the forkserver) would stay forever."""

    def watch() -> None:
        try:
            server = os.pidfd_open(server_pid)
        except OSError:  # already gone
            os._exit(0)
        select.select([server], [], [])  # readable once the process has exited
        os._exit(0)

    threading.Thread(target=watch, name="ferryd-server-watch", daemon=True).start()


class _Pool:
    """The process pool, made on first use and again if a worker died."""

    executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["__main__", "ferryd.auth.passwords"])
            self.executor = ProcessPoolExecutor(
                min(len(os.sched_getaffinity(0)), MAX_WORKERS),
                mp_context=context,
                initializer=_end_with,
                initargs=(os.getpid(),),
            )
        return self.executor

    def discard(self, broken: ProcessPoolExecutor) -> None:
        if self.executor is broken:
            self.executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_POOL = _Pool()


async def verify(stored: str, password: str) -> bool:
    """:func:`verify_password` off the loop; raises ``UnsupportedHash`` as it does."""
    if scheme_of(stored) not in _IN_PROCESSES:
        return await asyncio.to_thread(verify_password, stored, password)
    loop = asyncio.get_running_loop()
    executor = _POOL.get()
    try:
        return await loop.run_in_executor(executor, verify_password, stored, password)
    except BrokenProcessPool:
        # A worker was killed (the OOM killer, an operator): a new pool takes this login.
        _POOL.discard(executor)
        return await loop.run_in_executor(_POOL.get(), verify_password, stored, password)


async def close() -> None:
    """Stop the worker processes (the server is shutting down)."""
    await asyncio.to_thread(_POOL.close)

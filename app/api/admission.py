"""Admission to the database: at most as many requests work with the database at once as the
pool has connections, and the others wait on the event loop — holding no thread and no
connection — for up to `YIZHAN_POOL_TIMEOUT_S`, then get 503 + Retry-After.

Why: FastAPI runs a request's dependencies and its route function in separate worker-thread
hops. Without admission, 100 simultaneous writes each check out a connection in one hop and
then wait for a thread for the next; the threads are all taken by requests blocked on the
pool, and everything stalls until the pool times out (the issue measured 118 × 500 after 30 s).
With admission, every admitted request holds at most one connection and one thread at a time,
and there are more threads than admission slots, so an admitted request always progresses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.db.errors import RETRY_POOL_S
from app.errors import ServiceUnavailableError


class Admission:
    """A counting gate in front of the database for request handlers."""

    def __init__(self, slots: int, wait_s: float) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._sem = asyncio.Semaphore(slots)

    @property
    def in_use(self) -> int:
        """Slots taken now (for tests and diagnostics)."""
        return self.slots - self._sem._value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; 503 if none frees up within `wait_s`."""
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait_s)
        except TimeoutError:
            raise ServiceUnavailableError(
                f"database: busy, every connection is in use; retry in {RETRY_POOL_S} s "
                "(服务繁忙，请稍后重试)",
                field="database",
                retry_after=RETRY_POOL_S,
            ) from None
        try:
            yield
        finally:
            self._sem.release()

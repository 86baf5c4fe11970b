"""The service's micro-batcher: order, errors, and batches that follow the load."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from serving.batching import MicroBatcher


def _doubled(items):
    time.sleep(0.005)  # scoring takes a while: requests pile up meanwhile
    return [2 * i for i in items]


def test_results_come_back_to_their_callers():
    async def main():
        batcher = MicroBatcher(_doubled, max_batch_size=4)
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        finally:
            batcher.close()

    assert asyncio.run(main()) == [2 * i for i in range(10)]


def test_a_failing_batch_fails_each_of_its_callers():
    def broken(items):
        raise RuntimeError("bug")

    async def main():
        batcher = MicroBatcher(broken)
        try:
            return await asyncio.gather(
                *(batcher.submit(i) for i in range(3)), return_exceptions=True
            )
        finally:
            batcher.close()

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def _closed_loop_batch_sizes(refill_wait: float, clients: int = 8, rounds: int = 30) -> Counter:
    """Batch sizes when ``clients`` each send a request, wait for the answer, and send the
    next one after a short network delay: what 32 HTTP clients do to the service."""

    async def client(batcher: MicroBatcher, k: int) -> None:
        for i in range(rounds):
            await batcher.submit(i)
            # the answer travels back and the next request comes, some clients sooner
            await asyncio.sleep(0.0002 * (k + 1))

    async def main() -> list[int]:
        batcher = MicroBatcher(_doubled, refill_wait=refill_wait)
        try:
            await asyncio.gather(*(client(batcher, k) for k in range(clients)))
            return batcher.batch_sizes
        finally:
            batcher.close()

    return Counter(asyncio.run(main()))


def test_clients_in_a_closed_loop_are_batched_together():
    sizes = _closed_loop_batch_sizes(refill_wait=0.02)  # generous: CI machines are busy
    # everyone together after the first round, rather than split in two alternating parts
    assert sizes[8] >= 25, sizes


def test_without_the_refill_wait_batches_split():
    """What the refill wait fixes, shown so the test above can fail: the first clients
    back start a batch of their own, and the rest wait for it."""
    sizes = _closed_loop_batch_sizes(refill_wait=0.0)
    assert sizes[8] < 5, sizes

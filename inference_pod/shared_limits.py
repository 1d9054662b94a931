"""The per-token stream limit, counted across all worker processes of one pod.

With `voiceflow serve --workers N` the kernel (SO_REUSEPORT) hashes each connection to any worker,
so one token's streams land on all of them: a count kept per process would let a token open N
times its limit. The counts live instead in one shared-memory table that every worker updates
under one lock: an open-addressing hash table of (key, open streams) rows keyed by a 64-bit
digest of the identity. Keys are never removed (a row whose count fell to 0 is reused by the
next new key), so a probe chain never has a hole in it.

Same interface as `auth.ConnectionLimiter`, which a single-process pod keeps using.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

# Distinct tokens with open streams at once; far above the pod's connection limit per token count.
SLOTS = 4096


class TokenLimiter(Protocol):
    """Open streams per identity: auth.ConnectionLimiter in one process, or the shared one."""

    def acquire(self, identity: str) -> bool: ...

    def release(self, identity: str) -> None: ...

    def count(self, identity: str) -> int: ...


class SharedTable(Protocol):
    """A shared int64 array of 2 * SLOTS values (multiprocessing.Array('q', ..., lock=False))."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, value: int, /) -> None: ...

    def __len__(self) -> int: ...


def token_key(identity: str) -> int:
    """A non-zero signed 64-bit key for an identity (0 marks a row never used)."""
    key = int.from_bytes(hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
    return key or 1


class Column(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> int: ...


def find_slot(keys: Column, counts: Column, key: int) -> int | None:
    """The row for `key`: its own if it has one, else the first row with no open streams on its
    probe chain (a never-used row ends the chain); None when every row is held by another key."""
    n = len(keys)
    start = key % n
    reusable: int | None = None
    for i in range(n):
        j = (start + i) % n
        if keys[j] == key:
            return j
        if keys[j] == 0:
            return reusable if reusable is not None else j
        if counts[j] == 0 and reusable is None:
            reusable = j
    return reusable


class _Rows:
    """The table's two columns as sequences, for find_slot."""

    def __init__(self, table: SharedTable, column: int) -> None:
        self.table = table
        self.column = column

    def __len__(self) -> int:
        return len(self.table) // 2

    def __getitem__(self, i: int) -> int:
        return int(self.table[2 * i + self.column])


class SharedConnectionLimiter:
    """Open streams per identity across processes; `lock` is a multiprocessing.Lock."""

    def __init__(self, table: SharedTable, lock: Any, limit: int) -> None:
        self.table = table
        self.lock = lock
        self.limit = limit
        self._keys = _Rows(table, 0)
        self._counts = _Rows(table, 1)

    def acquire(self, identity: str) -> bool:
        key = token_key(identity)
        with self.lock:
            slot = find_slot(self._keys, self._counts, key)
            if slot is None:  # SLOTS distinct tokens streaming at once: refuse rather than not count
                return False
            count = self._counts[slot] if self._keys[slot] == key else 0
            if count >= self.limit:
                return False
            self.table[2 * slot] = key
            self.table[2 * slot + 1] = count + 1
            return True

    def release(self, identity: str) -> None:
        key = token_key(identity)
        with self.lock:
            slot = find_slot(self._keys, self._counts, key)
            if slot is not None and self._keys[slot] == key and self._counts[slot] > 0:
                self.table[2 * slot + 1] = self._counts[slot] - 1

    def count(self, identity: str) -> int:
        key = token_key(identity)
        with self.lock:
            slot = find_slot(self._keys, self._counts, key)
            return self._counts[slot] if slot is not None and self._keys[slot] == key else 0


def new_table(context: Any) -> tuple[SharedTable, Any]:
    """(table, lock) in shared memory, from a multiprocessing context, before the workers start."""
    return context.Array("q", 2 * SLOTS, lock=False), context.Lock()

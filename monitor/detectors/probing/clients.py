"""Who is asking: a bounded LRU of client ids and the per-client ring buffers of their queries.

Per-client state must stay bounded whatever the traffic, because client ids come from outside
(an attacker can mint accounts): at most ``max_clients`` clients are tracked, the least recently
seen one is evicted when a new one arrives (and the evictions are counted, so that a Sybil flood
shows up instead of silently erasing state), and each client keeps at most ``history`` queries in
ring buffers that grow on demand (a client that sent 10 queries costs 10 rows, not ``history``).
Ids longer than :data:`monitor.labels.MAX_ID_CHARS` are tracked by digest (as the label joiner
keeps request ids), so that 10,000 clients cannot hold gigabytes of id text.

Ids leave the process (metrics, the sidecar API) only as salted hashes unless raw ids are
allowed, so that an exported top-k never leaks an API key or an IP address.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.labels import MAX_ID_CHARS, id_key

__all__ = ["ClientTable", "ClientRing", "Lookup", "hash_client_id"]

#: LRU key prefix of clients restored under their hashed id (a raw id never starts with NUL).
_PLACEHOLDER = "\x00"
#: the name a campaign gives a member whose slot was reused before it joined (see the detector)
_EVICTED = re.compile(r"evicted-\d+")


def hash_client_id(client: str, salt: str) -> str:
    """Salted 12-hex-digit hash of a client id (BLAKE2b keyed by the salt).

    Examples
    --------
    >>> hash_client_id("alice", "pepper") == hash_client_id("alice", "pepper")
    True
    >>> hash_client_id("alice", "pepper") == hash_client_id("alice", "salt")
    False
    >>> len(hash_client_id("alice", "pepper"))
    12
    """
    key = salt.encode("utf-8")[:64]
    return hashlib.blake2b(client.encode("utf-8", "surrogatepass"), digest_size=6, key=key).hexdigest()


def _key(client: Any) -> str:
    """The LRU key of a raw client id: ``anonymous`` for None and empty text (as the row reader,
    :func:`monitor.row_arguments.row_clients`, reads them), the text of any other value, a digest
    beyond :data:`MAX_ID_CHARS` (ids come from callers: bounded in length as in number)."""
    key = (client or "anonymous") if isinstance(client, str) else "anonymous" if client is None else str(client)
    return id_key(key) if len(key) > MAX_ID_CHARS else key


@dataclass
class Lookup:
    """Slots of one batch's rows, and what the lookup changed."""

    slots: np.ndarray  #: slot of each row, int64 ``(n,)``
    created: list[int]  #: slots (re)assigned to clients first seen now
    evicted: list[tuple[int, int, str]]  #: (slot, serial, exported id) of clients evicted to make room


class ClientTable:
    """Bounded LRU mapping client ids to dense slots ``0..max_clients-1``.

    Parameters
    ----------
    max_clients
        Number of clients tracked at once. Each new client beyond it evicts the least recently
        seen one (its state is reset and the eviction counted).
    salt
        Key of the hash used for exported ids.
    raw_ids
        Export raw ids instead of salted hashes (only where ids are not sensitive).

    Each client also gets a ``serial`` (a number never reused), so that global state that refers
    to a client (campaign membership) is not confused by a slot reused after an eviction.

    Examples
    --------
    >>> t = ClientTable(2, salt="s", raw_ids=True)
    >>> t.lookup(np.array(["a", "b", "a"], dtype=object)).slots.tolist()
    [0, 1, 0]
    >>> r = t.lookup(np.array(["c"], dtype=object))   # evicts "b", the least recently seen
    >>> r.slots.tolist(), r.evicted, t.evictions
    ([1], [(1, 1, 'b')], 1)
    >>> t.display(1)
    'c'
    """

    def __init__(self, max_clients: int, salt: str, raw_ids: bool = False) -> None:
        if int(max_clients) < 1:
            raise ValueError(f"max_clients must be >= 1, got {max_clients}")
        self.max_clients = int(max_clients)
        self.salt = str(salt)
        self.raw_ids = bool(raw_ids)
        self._lru: OrderedDict[str, int] = OrderedDict()
        self._ids: list[str | None] = [None] * self.max_clients
        self._names: list[str | None] = [None] * self.max_clients
        self.serial = np.full(self.max_clients, -1, dtype=np.int64)
        self._free = list(range(self.max_clients - 1, -1, -1))
        self._next_serial = 0
        self.evictions = 0
        #: hashed ids of clients restored from a checkpoint without raw ids; adopted on first sight
        self._restored: set[str] = set()

    def __len__(self) -> int:
        return len(self._lru)

    def display(self, slot: int) -> str:
        """The id shown outside the process: salted hash, or the raw id when allowed."""
        name = self._names[slot]
        return "" if name is None else name

    def display_key(self, client: Any) -> str:
        """The id a raw client id is shown under outside the process, tracked or not."""
        key = _key(client)
        return key if self.raw_ids else hash_client_id(key, self.salt)

    def hide_raw(self, name: str) -> str:
        """A display id saved while raw ids were allowed, as shown now that they are not (the
        placeholder of a client evicted before it joined a campaign, ``evicted-<serial>``, says
        nothing of the client and is kept)."""
        return name if self.raw_ids or _EVICTED.fullmatch(name) else self.display_key(name)

    def raw(self, slot: int) -> str | None:
        return self._ids[slot]

    def slot_of(self, client: Any) -> int | None:
        """Slot of a raw client id, or None when it is not tracked."""
        client = _key(client)
        slot = self._lru.get(client)
        if slot is None and self._restored:
            slot = self._lru.get(_PLACEHOLDER + hash_client_id(client, self.salt))
        return slot

    def lookup(self, clients: np.ndarray) -> Lookup:
        """Slots for a batch of ids (``None`` is the anonymous client), updating recency."""
        n = len(clients)
        seen: dict[Any, int] = {}
        created: list[int] = []
        evicted: list[tuple[int, int, str]] = []
        lru = self._lru
        keys: dict[Any, str] = {}
        ids = clients.tolist()
        try:
            distinct = dict.fromkeys(ids)
        except TypeError:  # an unhashable id (a list, a dict) from a caller: tracked by its text
            ids = [c if c is None or isinstance(c, str) else str(c) for c in ids]
            distinct = dict.fromkeys(ids)
        # the distinct ids in order of first appearance (a batch holds few clients, many rows each):
        # each is resolved once, in the order a row-by-row walk would meet them
        for c in distinct:
            key = _key(c)
            s = lru.get(key)
            if s is None:
                s = self._adopt(key)
                if s is None:
                    s = self._allocate(key, evicted)
                    created.append(s)
            else:
                lru.move_to_end(key)  # now, so that a new client of this batch cannot evict it
            seen[c] = s
            keys[c] = key
        slots = np.fromiter(map(seen.__getitem__, ids), dtype=np.int64, count=n)
        if len(seen) > 1:  # recency follows each client's last row in the batch (latest last)
            for c in reversed(list(dict.fromkeys(reversed(ids)))):
                lru.move_to_end(keys[c])
        elif seen:
            lru.move_to_end(keys[next(iter(seen))])
        return Lookup(slots, created, evicted)

    def _adopt(self, key: str) -> int | None:
        """A client restored from a checkpoint under its hashed id takes its slot back."""
        if not self._restored:
            return None
        hashed = hash_client_id(key, self.salt)
        if hashed not in self._restored:
            return None
        self._restored.discard(hashed)
        slot = self._lru.pop(_PLACEHOLDER + hashed)
        self._ids[slot] = key
        self._names[slot] = self.display_key(key)  # the raw id, when raw ids were turned on since the save
        self._lru[key] = slot
        return slot

    def _allocate(self, key: str, evicted: list[tuple[int, int, str]]) -> int:
        if self._free:
            slot = self._free.pop()
        else:
            old, slot = self._lru.popitem(last=False)
            if old.startswith(_PLACEHOLDER):
                self._restored.discard(old[len(_PLACEHOLDER):])
            evicted.append((slot, int(self.serial[slot]), self.display(slot)))
            self.evictions += 1
        self._ids[slot] = key
        self._names[slot] = self.display_key(key)
        self.serial[slot] = self._next_serial
        self._next_serial += 1
        self._lru[key] = slot
        return slot

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """LRU order, slots and serials; ids are stored hashed unless raw ids are allowed."""
        keys, slots = [], []
        for key, slot in self._lru.items():
            if key.startswith(_PLACEHOLDER):
                keys.append(key[len(_PLACEHOLDER):])
            else:
                keys.append(key if self.raw_ids else hash_client_id(key, self.salt))
            slots.append(slot)
        return {
            "keys": keys,
            "slots": np.asarray(slots, dtype=np.int64),
            "serial": self.serial.copy(),
            "names": [self._names[s] or "" for s in slots],
            "next_serial": self._next_serial,
            "evictions": self.evictions,
            "raw_ids": self.raw_ids,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        serial = np.asarray(state["serial"], dtype=np.int64)
        if serial.shape != self.serial.shape:
            raise ValueError(
                f"client table state is for max_clients={serial.shape[0]}, this detector has {self.max_clients}; "
                "restore with the same max_clients"
            )
        self.__init__(self.max_clients, self.salt, self.raw_ids)  # type: ignore[misc]
        self.serial = serial.copy()
        self._next_serial = int(state["next_serial"])
        self.evictions = int(state["evictions"])
        slots = [int(s) for s in np.asarray(state["slots"]).tolist()]
        saved_raw = bool(state.get("raw_ids", False))
        raw = saved_raw and self.raw_ids
        for key, slot, name in zip(state["keys"], slots, state["names"]):
            self._names[slot] = str(name)
            if saved_raw and not raw:
                # raw ids turned off since the save: neither kept nor shown (they were, until each
                # client was evicted, and the clients were never recognised again)
                key = self._names[slot] = self.display_key(key)
            if raw:
                self._ids[slot] = str(key)
                self._lru[str(key)] = slot
            else:
                # the raw id is unknown until the client is seen again; keep its place in the LRU
                self._restored.add(str(key))
                self._lru[_PLACEHOLDER + str(key)] = slot
        used = set(slots)
        self._free = [s for s in range(self.max_clients - 1, -1, -1) if s not in used]


class ClientRing:
    """The last ``history`` distinct queries of one client, in ring buffers grown on demand.

    Holds, per stored query: its sketch (``dim`` float32, stored column-wise so that the distance
    product against all stored queries is one contiguous matrix product) and squared norm, its predicted label,
    an exact-repeat hash, a byte of per-query flags, its copy cluster (see
    :func:`.neighbours.copy_clusters`; numbers wrap at 2**32, far beyond any live cluster's age) and,
    when the hash family is on, its segment fingerprints. About ``4 * dim + 15 (+ 4 * n_fingerprints)``
    bytes per stored query.
    """

    __slots__ = ("history", "cap", "filled", "head", "sketch_t", "norm", "label", "exact", "flags", "cluster", "fps",
                 "prada", "prada_n", "prada_new", "next_cluster")
    #: the integer fields of the state
    _COUNTERS = ("cap", "filled", "head", "prada_n", "prada_new", "next_cluster")

    def __init__(self, history: int, dim: int, n_fps: int, prada_window: int, start: int = 16) -> None:
        self.history = int(history)
        self.cap = min(int(start), self.history)
        self.filled = 0
        self.head = 0
        self.sketch_t = np.zeros((dim, self.cap), dtype=np.float32)
        self.norm = np.zeros(self.cap, dtype=np.float32)
        self.label = np.zeros(self.cap, dtype=np.int16)
        self.exact = np.zeros(self.cap, dtype=np.uint32)
        self.flags = np.zeros(self.cap, dtype=np.uint8)
        self.cluster = np.zeros(self.cap, dtype=np.uint32)
        self.next_cluster = 0
        self.fps = np.zeros((self.cap, n_fps), dtype=np.uint32)
        self.prada = np.zeros(prada_window, dtype=np.float32)  # ring of PRADA minimum distances
        self.prada_n = 0  # entries ever pushed
        self.prada_new = 0  # entries since the last test

    @property
    def nbytes(self) -> int:
        return int(self.sketch_t.nbytes + self.norm.nbytes + self.label.nbytes + self.exact.nbytes
                   + self.flags.nbytes + self.cluster.nbytes + self.fps.nbytes + self.prada.nbytes)

    def reserve(self, extra: int) -> int:
        """Grow the buffers (doubling, up to ``history``) so that ``extra`` more rows fit unwrapped;
        returns the bytes added (so that the owner keeps its memory total without re-summing)."""
        need = min(self.filled + extra, self.history)
        if need <= self.cap:
            return 0
        before = self.nbytes
        cap = self.cap
        while cap < need:
            cap = min(cap * 2, self.history)
        # the ring has not wrapped yet while cap < history, so live rows are 0..filled-1
        for name in ("norm", "label", "exact", "flags", "cluster", "fps"):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            new[: self.filled] = old[: self.filled]
            setattr(self, name, new)
        new_t = np.zeros((self.sketch_t.shape[0], cap), dtype=np.float32)
        new_t[:, : self.filled] = self.sketch_t[:, : self.filled]
        self.sketch_t = new_t
        self.cap = cap
        return self.nbytes - before

    def positions(self, m: int) -> np.ndarray:
        """Ring positions the next ``m`` rows go to (call :meth:`reserve` first)."""
        if self.cap < self.history:
            return np.arange(self.filled, self.filled + m)
        return (self.head + np.arange(m)) % self.history

    def commit(self, m: int) -> None:
        if self.cap < self.history:
            self.filled += m
            self.head = self.filled % self.history
        else:
            self.head = (self.head + m) % self.history
            self.filled = min(self.filled + m, self.history)

    def push_prada(self, values: np.ndarray) -> None:
        """Append PRADA minimum distances; entry ``e`` lives at ``e % prada_window`` (order is
        irrelevant to the normality test, which sorts)."""
        w = self.prada.shape[0]
        k = values.shape[0]
        if k == 0:
            return
        take = values[-w:]
        pos = (self.prada_n + k - take.shape[0] + np.arange(take.shape[0])) % w
        self.prada[pos] = take
        self.prada_n += k
        self.prada_new += k

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) if isinstance(getattr(self, name), int) else getattr(self, name).copy()
                for name in self.__slots__ if name != "history"}

    @classmethod
    def from_state(cls, history: int, state: dict[str, Any]) -> "ClientRing":
        ring = cls.__new__(cls)
        ring.history = int(history)
        if "cluster" not in state:
            # saved before copy clusters: every stored query a cluster of its own (its copies are
            # counted one by one, as they were then, until they leave the ring)
            cap = int(state["cap"])
            state = {**state, "cluster": np.arange(cap, dtype=np.uint32), "next_cluster": cap}
        for name in cls.__slots__:
            if name == "history":
                continue
            v = state[name]
            setattr(ring, name, int(v) if name in cls._COUNTERS else np.array(v))
        ring.sketch_t = ring.sketch_t.astype(np.float32)
        ring.norm = ring.norm.astype(np.float32)
        ring.label = ring.label.astype(np.int16)
        ring.exact = ring.exact.astype(np.uint32)
        ring.flags = ring.flags.astype(np.uint8)
        ring.cluster = ring.cluster.astype(np.uint32)
        ring.fps = ring.fps.astype(np.uint32)
        ring.prada = ring.prada.astype(np.float32)
        return ring

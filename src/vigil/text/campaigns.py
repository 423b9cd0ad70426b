"""Near-duplicate posts and campaigns: MinHash over word bigrams, a compact banded LSH index, and
the union of near-duplicates into campaigns, each one queue item with its size, accounts and
velocity.

**Shingles: word bigrams.** Measured in ``bench/text_campaigns.py`` (results in
``bench/results/text_campaigns.md``) on normalized real rows of ``../shared/data/text`` edited
the way campaigns edit them (hashtags added, a word inserted or replaced, emoji, a mention and a
link, sentences swapped) against unrelated rows of the same forum: word bigrams keep 95 % of the
edited copies at Jaccard >= 0.64 (0.62 with two edits at once) while 99 % of unrelated
Stormfront sentences stay at or below 0.33 of their nearest neighbour; word trigrams lose
single-word edits (0.50) and character 4-grams bring unrelated sentences closer (0.39). Words are
Unicode ``\\w`` runs, case-folded, with links and @mentions (and the normalizer's ``url`` and
``@user`` placeholders) dropped, since a campaign varies them; emoji are not words (the
normalizer spells out the ones used as words); scripts written without spaces (Chinese,
Japanese, Thai) count each character as a word. Only the first :data:`MAX_WORDS` words count.

**Short texts are skipped.** Below ``min_tokens`` words a text is not tracked (``add`` returns
None and ``signature`` None): "I hate you all" is written independently by thousands, and two
five-word texts share half their bigrams by chance; repeated short slogans are the lexicon's
job.

**Clustering.** The MinHash signatures (``datasketch``, ``num_perm`` permutations) are banded
(``rows`` values a band, as few rows as keep a pair at the threshold a candidate with >= 98 %
probability: 32 bands of 4 at 128 permutations and 0.6); a candidate joins when its estimated
Jaccard is >= ``threshold``. A post joining several campaigns merges them (union-find), so a
chain of edits stays one campaign. A campaign's id is the key of its first post and does not
change when it grows; when two campaigns merge, the older one's id survives and the other id
becomes an alias that :meth:`CampaignTracker.view` still answers.

**Why not ``MinHashLSH``.** datasketch's index keeps a Python ``bytes`` and a set entry per band
per post: about 9.5 KB a post at 32 bands (1 GB at 100k posts) and 0.4 ms per query+insert,
measured in the bench. The index here keeps (band key, slot) pairs as ``uint64`` in a few
sorted arrays: 8 bytes per band per post, a presence bitmap and a few vectorised binary searches
a query. Signatures live in one ``uint32`` matrix.

**Expiry.** A post is held while its ``at`` is within ``window`` of the newest ``at`` seen (the
tracker's clock: data time, so a replayed archive expires as it did live) and while it is among
the ``max_posts`` newest; the oldest goes first. Size, accounts, velocity and samples count held
posts; a campaign's id, first post and ``first_seen`` stay; a campaign whose posts have all
expired is forgotten. A post already older than the window when it arrives is not tracked.
A campaign never splits when the post that joined two halves expires.

**Velocity** is the campaign's held posts whose ``at`` is within the last hour of the tracker's
clock, per hour: a campaign that went quiet reads 0.

**Restart.** :meth:`CampaignTracker.restore` rebuilds from stored signatures without the texts;
replayed in the order they were first added, it rebuilds the same campaigns with the same ids.

**Measured** (the bench, 113k real posts, 100k held): 96-100 % of copies with one edit and 95 %
with two join their original's campaign (68 % with three), no unrelated posts merged; ``add``
takes 0.16 ms on average (0.5 ms while one post is copied 20,000 times), and about 1.4 KB a
post held. Merging the index's largest array stalls an add for tens of ms every ~9,000 posts;
rebuilding it (once per ``max_posts`` evictions) for up to a second.

**Threads.** Every public method may be called from any thread: hashing runs outside the lock,
the index and campaigns change under one lock (an ``add`` holds it for well under 0.1 ms).
"""

from __future__ import annotations

import bisect
import heapq
import re
import struct
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
from datasketch import LeanMinHash, MinHash

#: Words a text is hashed on at most; a longer post's campaign is decided by its start.
MAX_WORDS = 2_000
#: The fixed seed of the permutations: signatures stored by one process must compare with the
#: next one's. The shingle hash (CRC-32, which datasketch's affine32 scheme premixes with the
#: MurmurHash3 finalizer) is as much part of the stored format: 8x cheaper than its SHA-1.
SEED = 1
#: Posts looked at per band key and sorted array at most. A band key shared by thousands of
#: posts is a campaign's: its members are near-duplicates of each other, so a sample finds the
#: campaign as surely as all of them (32 bands x up to 3 arrays x 8), and a copy posted 10,000
#: times costs no more to add than one posted a few hundred times.
BUCKET_SAMPLE = 8
#: Entries in the index's newest sorted array, and how much longer each older one may be.
FIRST_RUN = 8_192
RUN_GROWTH = 32
VELOCITY_WINDOW = timedelta(hours=1)
SAMPLE_KEYS = 5

_SCHEME = "affine32"
#: Links and @mentions, and the placeholders the normalizer writes for them.
_LINKS_AND_MENTIONS = re.compile(r"https?://\S+|www\.\S+|@\w+|\burl\b")
_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[^\W{_UNSPACED}]+|[{_UNSPACED}]")
_SLOT_BITS = np.uint64(32)
_SLOT_MASK = np.uint64(0xFFFF_FFFF)
_NEXT_KEY = np.uint64(1 << 32)
#: Size of the index's presence bitmap (2^27 bits, 16 MiB): at 200k posts x 32 bands one absent
#: band key in 20 looks present and costs a binary search for nothing.
_FILTER_BITS = 27
_FILTER_MASK = np.uint64((1 << _FILTER_BITS) - 1)
# Odd 64-bit multipliers (splitmix64's): a band's values and its number mix into one key.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def words(text: str) -> list[str]:
    """The words a text is compared on (see the module docstring)."""
    return _WORD.findall(_LINKS_AND_MENTIONS.sub(" ", text.casefold()))[:MAX_WORDS]


def shingles(tokens: list[str]) -> list[bytes]:
    """Word bigrams, UTF-8 encoded (a one-word text is its word)."""
    if len(tokens) < 2:
        return [token.encode() for token in tokens]
    return [f"{a} {b}".encode() for a, b in pairwise(tokens)]


@dataclass(frozen=True)
class CampaignView:
    """A campaign as the review queue shows it; counts are over the posts held (``window``)."""

    id: str
    size: int
    #: Distinct non-empty ``author_ref`` values among the posts held.
    accounts: int
    first_seen: datetime
    last_seen: datetime
    #: Held posts within the last hour of the tracker's clock, per hour.
    velocity_per_hour: float
    first_post_key: str
    first_author_ref: str
    #: A few member keys, most recent first.
    sample_keys: tuple[str, ...]


def band_rows(threshold: float, num_perm: int, recall: float = 0.98) -> int:
    """The longest band (fewest false candidates) with which a pair at ``threshold`` still
    shares at least one band with probability ``recall``."""
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            return rows
    return 1


class SortedRuns:
    """A sorted multiset of ``uint64`` kept as a few sorted arrays, the newest (and smallest)
    first, each allowed :data:`RUN_GROWTH` times the length of the one before. An insert
    copies only the first, small array; an entry is merged into a larger array about once per
    level; a lookup is one binary search per array (three at a million entries)."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self._runs)

    def add(self, entries: np.ndarray) -> None:
        carry = np.sort(entries)
        for level, run in enumerate(self._runs):
            carry = _merged(run, carry)
            if len(carry) <= FIRST_RUN * RUN_GROWTH**level:
                self._runs[level] = carry
                return
            self._runs[level] = carry[:0]
        self._runs.append(carry)

    def replace(self, entries: np.ndarray) -> None:
        self._runs = [np.sort(entries)]

    def within(self, starts: np.ndarray, ends: np.ndarray, limit: int) -> np.ndarray:
        """The entries ``e`` with ``starts[i] <= e < ends[i]`` for some ``i``: all of them, or
        ``limit`` spread evenly over a range (in each array) that holds more."""
        bounds = np.concatenate([starts, ends])
        found = [np.zeros(0, dtype=np.uint64)]
        for run in self._runs:
            positions = np.searchsorted(run, bounds)
            low, high = positions[: len(starts)], positions[len(starts) :]
            counts = high - low
            strides = np.maximum(1, -(-counts // limit))
            taken = -(-counts // strides)
            total = int(taken.sum())
            if total:
                # All the ranges in one gather: the j-th entry taken from range k is
                # run[low[k] + j * strides[k]].
                ranges = np.repeat(np.arange(len(taken)), taken)
                steps = np.arange(total) - np.repeat(np.cumsum(taken) - taken, taken)
                found.append(run[low[ranges] + steps * strides[ranges]])
        return np.concatenate(found)


def _merged(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two sorted arrays as one: NumPy's stable sort is timsort, which merges two sorted runs in
    linear time (as fast as ``np.insert`` on large arrays, twice as fast on small ones)."""
    merged = np.concatenate([first, second])
    merged.sort(kind="stable")
    return merged


class BandIndex:
    """Banded LSH over MinHash signatures kept in one matrix, addressed by slot.

    Band keys (31 bits: a band's values and its number, mixed) are stored as ``key << 32 |
    slot`` in :class:`SortedRuns`. A binary search in an array of millions misses the cache
    at every step (~1 us), and most band keys of a new post are held by no one: a presence
    bitmap (one bit per key, a one-hash Bloom filter) answers those first. Removing a slot
    only frees it: its stale entries stay until the runs are rebuilt (when they outnumber the
    live ones), which is safe because every candidate is checked against the signature its
    slot holds now.
    """

    def __init__(self, num_perm: int, rows: int, capacity: int) -> None:
        self.num_perm = num_perm
        self.rows = rows
        self.bands = num_perm // rows
        self._multipliers = _MIX[np.arange(rows) % len(_MIX)]
        self._band_salts = np.arange(self.bands, dtype=np.uint64) * _MIX[0]
        # Allocated whole, never grown (copying a large matrix stalls an add for 0.1 s): zeroed
        # pages cost memory only once a slot is first written.
        self._signatures = np.zeros((capacity, num_perm), dtype=np.uint32)
        self._live = np.zeros(capacity, dtype=bool)
        self._free: list[int] = []
        self._used = 0
        self._entries = SortedRuns()
        self._filter = np.zeros(1 << (_FILTER_BITS - 3), dtype=np.uint8)
        self._stale = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays (the signatures, the band keys, the bitmap)."""
        arrays = (self._signatures, self._live, self._filter)
        return sum(array.nbytes for array in arrays) + self._entries.nbytes

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """``(n, bands)`` 31-bit band keys (as ``uint64``) of ``(n, num_perm)`` signatures."""
        used = signatures[:, : self.bands * self.rows].astype(np.uint64)
        values = used.reshape(len(signatures), self.bands, self.rows)
        mixed = (values * self._multipliers).sum(axis=2) + self._band_salts
        mixed ^= mixed >> np.uint64(31)
        mixed *= _MIX[1]
        # 31 bits, so that the next key up (the end of a key's run) still fits in 64 bits.
        keys: np.ndarray = mixed >> np.uint64(33)
        return keys

    def add(self, signature: np.ndarray, threshold: float) -> tuple[int, list[int]]:
        """Store ``signature``; its slot, and the slots of the signatures held before that
        agree with it on at least ``threshold`` of the permutations (datasketch's Jaccard
        estimate)."""
        keys = self.band_keys(signature[None, :])[0]
        similar = self._similar(keys, signature, threshold)
        slot = self._take_slot()
        self._signatures[slot] = signature
        self._live[slot] = True
        self._entries.add((keys << _SLOT_BITS) | np.uint64(slot))
        self._mark(keys)
        return slot, similar

    def remove(self, slot: int) -> None:
        self._live[slot] = False
        self._free.append(slot)
        self._stale += self.bands
        if 2 * self._stale > len(self._entries):
            self._rebuild()

    def _similar(self, keys: np.ndarray, signature: np.ndarray, threshold: float) -> list[int]:
        bits = keys & _FILTER_MASK
        keys = keys[(self._filter[bits >> np.uint64(3)] >> (bits & np.uint64(7))) & 1 == 1]
        if not len(keys):
            return []
        starts = keys << _SLOT_BITS
        found = self._entries.within(starts, starts + _NEXT_KEY, BUCKET_SAMPLE)
        slots = np.unique(found & _SLOT_MASK)
        slots = slots.astype(np.int64)[self._live[slots]]
        agreement = np.count_nonzero(self._signatures[slots] == signature, axis=1)
        similar: list[int] = slots[agreement >= threshold * self.num_perm].tolist()
        return similar

    def _mark(self, keys: np.ndarray) -> None:
        bits = keys & _FILTER_MASK
        flags = (np.uint64(1) << (bits & np.uint64(7))).astype(np.uint8)
        np.bitwise_or.at(self._filter, (bits >> np.uint64(3)).astype(np.int64), flags)

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        if self._used == len(self._live):
            raise RuntimeError(f"the index holds {self._used} signatures, its capacity")
        self._used += 1
        return self._used - 1

    def _rebuild(self) -> None:
        """Drop the stale entries: band keys recomputed from the live signatures."""
        slots = np.flatnonzero(self._live)
        # In blocks: the uint64 temporaries of 100k signatures at once would not stay in cache.
        blocks = [slots[start : start + 16_384] for start in range(0, len(slots), 16_384)]
        keys = np.concatenate(
            [self.band_keys(self._signatures[block]) for block in blocks]
            or [np.zeros((0, self.bands), dtype=np.uint64)]
        )
        self._entries.replace(((keys << _SLOT_BITS) | slots.astype(np.uint64)[:, None]).ravel())
        self._filter[:] = 0
        self._mark(keys.ravel())
        self._stale = 0


@dataclass(eq=False, slots=True)
class _Held:
    key: str
    author_ref: str
    at: float
    seq: int
    slot: int
    campaign: _Campaign | None = None


@dataclass(eq=False, slots=True)
class _Campaign:
    id: str
    #: Arrival number of the first post: the older of two merging campaigns keeps its id.
    seq: int
    first_author_ref: str
    first_seen: float
    last_seen: float
    members: set[str] = field(default_factory=set)
    authors: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)
    recent: list[tuple[float, str]] = field(default_factory=list)
    #: Ids of the campaigns merged into this one, answered as aliases.
    absorbed: list[str] = field(default_factory=list)

    @classmethod
    def started_by(cls, post: _Held) -> _Campaign:
        campaign = cls(post.key, post.seq, post.author_ref, post.at, post.at)
        campaign.add(post)
        return campaign

    def add(self, post: _Held) -> None:
        post.campaign = self
        self.members.add(post.key)
        if post.author_ref:
            self.authors[post.author_ref] += 1
        bisect.insort(self.times, post.at)
        self.recent = heapq.nlargest(SAMPLE_KEYS, [*self.recent, (post.at, post.key)])
        self.first_seen = min(self.first_seen, post.at)
        self.last_seen = max(self.last_seen, post.at)

    def discard(self, post: _Held) -> None:
        self.members.discard(post.key)
        if post.author_ref:
            self.authors[post.author_ref] -= 1
            if not self.authors[post.author_ref]:
                del self.authors[post.author_ref]
        del self.times[bisect.bisect_left(self.times, post.at)]

    def absorb(self, other: _Campaign, posts: dict[str, _Held]) -> None:
        """Take ``other``'s posts (its identity is settled by the caller)."""
        for key in other.members:
            posts[key].campaign = self
        self.members |= other.members
        self.authors.update(other.authors)
        self.times = sorted(self.times + other.times)  # two sorted runs: a linear merge
        self.recent = heapq.nlargest(SAMPLE_KEYS, [*self.recent, *other.recent])
        self.absorbed += [*other.absorbed, other.id]
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)

    def take_identity(self, older: _Campaign) -> None:
        self.absorbed = [old for old in self.absorbed if old != older.id] + [self.id]
        self.id, self.seq, self.first_author_ref = older.id, older.seq, older.first_author_ref

    def view(self, clock: float) -> CampaignView:
        window = VELOCITY_WINDOW.total_seconds()
        recent_posts = len(self.times) - bisect.bisect_left(self.times, clock - window)
        return CampaignView(
            id=self.id,
            size=len(self.members),
            accounts=len(self.authors),
            first_seen=_datetime(self.first_seen),
            last_seen=_datetime(self.last_seen),
            velocity_per_hour=recent_posts * 3600.0 / window,
            first_post_key=self.id,
            first_author_ref=self.first_author_ref,
            sample_keys=tuple(key for _, key in self.recent if key in self.members),
        )


class CampaignTracker:
    """Groups near-duplicate posts into campaigns as they arrive (see the module docstring)."""

    def __init__(
        self,
        *,
        threshold: float = 0.6,
        num_perm: int = 128,
        min_tokens: int = 5,
        window: timedelta = timedelta(days=7),
        max_posts: int = 200_000,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if not 16 <= num_perm <= 1024:
            raise ValueError("num_perm must be between 16 and 1024")
        if min_tokens < 2:
            raise ValueError("min_tokens must be at least 2 (a bigram)")
        if window <= timedelta(0) or max_posts < 1:
            raise ValueError("window and max_posts must be positive")
        self.threshold = threshold
        self.min_tokens = min_tokens
        self.window = window.total_seconds()
        self.max_posts = max_posts
        self._num_perm = num_perm
        # One MinHash per thread, cleared for each text: a copy of a prototype costs as much
        # as the hashing of a tweet.
        self._minhashes = threading.local()
        self._index = BandIndex(num_perm, band_rows(threshold, num_perm), max_posts)
        self._posts: dict[str, _Held] = {}
        self._by_slot: list[_Held | None] = []
        self._expiry: list[tuple[float, int, str]] = []
        self._campaigns: dict[str, _Campaign] = {}
        self._aliases: dict[str, str] = {}
        self._clock = float("-inf")
        self._seq = 0
        self._lock = threading.Lock()
        # The scanner stores signature(text) of the text it just added: hash it once.
        self._last_hashed: tuple[str, np.ndarray | None] = ("", None)

    def __len__(self) -> int:
        """Posts held."""
        return len(self._posts)

    @property
    def index(self) -> BandIndex:
        return self._index

    def add(self, key: str, text: str, author_ref: str, at: datetime) -> CampaignView | None:
        """Track a post (``text`` normalized). Its campaign's view, or None while it has no
        near-duplicate (or is too short to track). A key already held changes nothing."""
        hashvalues = self._hash(text)
        with self._lock:
            if key not in self._posts and hashvalues is not None:
                self._insert(key, hashvalues, author_ref, _timestamp(at))
            return self._view_of_post(key)

    def signature(self, text: str) -> bytes | None:
        """The compact MinHash of ``text`` for the store (None: too short to track)."""
        hashvalues = self._hash(text)
        if hashvalues is None:
            return None
        lean = LeanMinHash(seed=SEED, hashvalues=hashvalues, scheme=_SCHEME)
        buffer = bytearray(lean.bytesize())
        lean.serialize(buffer)
        return bytes(buffer)

    def restore(self, key: str, signature: bytes, author_ref: str, at: datetime) -> None:
        """Track a post from its stored :meth:`signature`, without its text (after a restart:
        replay in the order the posts were first added). ``ValueError`` for bytes that are not
        a signature of this tracker's configuration."""
        hashvalues = self._decode(signature)
        with self._lock:
            if key not in self._posts:
                self._insert(key, hashvalues, author_ref, _timestamp(at))

    def view(self, campaign_id: str) -> CampaignView | None:
        """The campaign with this id (or an id it absorbed); None once all its posts expired."""
        with self._lock:
            campaign = self._campaigns.get(campaign_id) or self._campaigns.get(
                self._aliases.get(campaign_id, "")
            )
            return None if campaign is None else campaign.view(self._clock)

    def _hash(self, text: str) -> np.ndarray | None:
        last_text, last_values = self._last_hashed
        if text == last_text and last_values is not None:
            return last_values
        tokens = words(text)
        if len(tokens) < self.min_tokens:
            return None
        minhash = self._minhash()
        minhash.clear()
        minhash.update_batch(shingles(tokens))
        hashvalues: np.ndarray = minhash.hashvalues
        self._last_hashed = (text, hashvalues)
        return hashvalues

    def _minhash(self) -> MinHash:
        minhash: MinHash | None = getattr(self._minhashes, "minhash", None)
        if minhash is None:
            minhash = self._minhashes.minhash = MinHash(
                num_perm=self._num_perm, seed=SEED, hashfunc=zlib.crc32, scheme=_SCHEME
            )
        return minhash

    def _decode(self, signature: bytes) -> np.ndarray:
        try:
            lean = LeanMinHash.deserialize(signature)
        except (struct.error, ValueError, TypeError) as exc:
            raise ValueError(f"not a MinHash signature: {exc}") from None
        if (lean.seed, len(lean), lean.scheme) != (SEED, self._index.num_perm, _SCHEME):
            raise ValueError(
                f"signature of another configuration (seed {lean.seed}, {len(lean)} "
                f"permutations, {lean.scheme}); this tracker uses {self._index.num_perm}"
            )
        hashvalues: np.ndarray = np.asarray(lean.hashvalues, dtype=np.uint32)
        return hashvalues

    def _insert(self, key: str, hashvalues: np.ndarray, author_ref: str, at: float) -> None:
        if at < self._clock - self.window:
            return
        self._clock = max(self._clock, at)
        self._expire(room_for_one=True)
        slot, similar = self._index.add(hashvalues, self.threshold)
        matches = [post for post in map(self._by_slot.__getitem__, similar) if post is not None]
        self._seq += 1
        post = _Held(key, author_ref, at, self._seq, slot)
        self._posts[key] = post
        if post.slot == len(self._by_slot):  # a new slot (freed ones are reused first)
            self._by_slot.append(post)
        else:
            self._by_slot[post.slot] = post
        heapq.heappush(self._expiry, (at, post.seq, key))
        if matches:
            self._join(post, matches)

    def _join(self, post: _Held, matches: list[_Held]) -> None:
        campaigns = {id(c): c for c in (m.campaign for m in matches) if c is not None}
        for single in (m for m in matches if m.campaign is None):
            started = _Campaign.started_by(single)
            self._campaigns[started.id] = started
            campaigns[id(started)] = started
        merged = self._merge(list(campaigns.values()))
        merged.add(post)

    def _merge(self, campaigns: list[_Campaign]) -> _Campaign:
        """One campaign of several: the largest takes the others' posts (less to move), the
        oldest gives its identity."""
        target = max(campaigns, key=lambda c: len(c.members))
        oldest = min(campaigns, key=lambda c: c.seq)
        for other in campaigns:
            if other is not target:
                target.absorb(other, self._posts)
                del self._campaigns[other.id]
        if oldest is not target:
            del self._campaigns[target.id]
            target.take_identity(oldest)
            self._campaigns[target.id] = target
        for old in target.absorbed:
            self._aliases[old] = target.id
        return target

    def _expire(self, *, room_for_one: bool) -> None:
        cutoff = self._clock - self.window
        limit = self.max_posts - room_for_one
        while self._expiry and (self._expiry[0][0] < cutoff or len(self._posts) > limit):
            _, _, key = heapq.heappop(self._expiry)
            self._remove(self._posts.pop(key))

    def _remove(self, post: _Held) -> None:
        self._index.remove(post.slot)
        self._by_slot[post.slot] = None
        campaign = post.campaign
        if campaign is None:
            return
        campaign.discard(post)
        if not campaign.members:
            del self._campaigns[campaign.id]
            for old in campaign.absorbed:
                self._aliases.pop(old, None)

    def _view_of_post(self, key: str) -> CampaignView | None:
        post = self._posts.get(key)
        if post is None or post.campaign is None:
            return None
        return post.campaign.view(self._clock)


def _timestamp(at: datetime) -> float:
    """Seconds since the epoch; a naive datetime is read as UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)

"""Accounts and networks at scale (issue 8): a generated stream of a million posts from ~50k
accounts with planted high-risk accounts and planted campaigns, through the real post pipeline
into a real database; how soon each planted account and campaign surfaces, how precise the
account alerts are, and memory, time and database size per 100k posts.

    .venv/bin/python bench/accounts_scale.py --posts 1000000 \
        --out bench/results/accounts_scale.md

``--posts 100000`` is the CI-sized run (5k accounts, same planted counts); ``--postgres`` runs
on a throw-away PostgreSQL database (``VIGIL_TEST_POSTGRES_URL``'s server) instead of a SQLite
file; ``--self-check`` only checks the generator (determinism and ground truth) and exits.

**The stream** (seeded, ``--seed``) covers 14 simulated days. Activity is heavy-tailed: every
account gets a log-normal weight (sigma 1.5) and the background posts are spread by it, so most
accounts post a few times and a few post hundreds of times. On top of that:

* **planted high-risk accounts** (50): ordinary-looking before and after, then a run of flagged
  posts at a planted time: 40 *bursts* (6-25 threats to life, threats, terrorist support and
  hate posts within 1-36 hours) and 10 *slow* ones (4-8 such posts over 2-5 days);
* **planted campaigns** (20): one account posts a propaganda text (terrorist support or hate),
  then 30-300 other accounts post near-duplicates of it (one or two edits: a word replaced or
  inserted, hashtags, emoji, a link) within hours, one to three copies each; 20 % of copies are
  reposts of the first post and 30 % mention its author. A copy is flagged when the classifier
  would flag its text (about three in four; a function of the normalized text, so identical
  texts get identical labels);
* **confounders**: *heavy* benign posters (0.2 % of accounts, 500-3,000 posts each at 1M, with
  the background rate of hate that such volume brings), half of them *news* accounts that cover
  two attacks with 5-30 updates each within three hours, some of which the classifier flags (at
  the rates its model card measured on news and condemnations: 6.7 % as threats, 11.7 %
  terrorist support, 10 % hate, :data:`NEWS_FALSE_FLAGS`), *isolated* accounts (1 %) with two to
  four hateful posts at least a day apart, *edgy* accounts (5 %) with a high background rate of
  offensive and some hateful posts, and 20 *viral* benign headlines shared by 50-500 accounts
  within hours (40 % reposts) that the campaign tracker clusters but that carry no flagged post;
* background posts carry replies (12 %) and mentions (5 %), so the ledger keeps links.

The generator records the ground truth: every post's account, kind, label and severity, every
account's kind, each planted account's flagged posts, each campaign's and viral's posts.

**The pipeline** is the real one downstream of the classifier:
``vigil.text.scanner.PostScanner`` (normalize, lexicon, triage, ``CampaignTracker`` on the real
texts, the store, the review queue) with ``vigil.networks.AccountLedger`` as its post hook,
inside the scanner's transactions, in batches of 500. The ledger's clock (its "now" for the
risk's decay) is the stream's: the newest post of the batch, since the stream is replayed much
faster than it was posted. The texts are synthetic, so the **classifier is a stand-in**
(:class:`LabelledClassifier`): it returns the generator's label for a text, with the
generator's probability (0.7-0.99; 0.5-0.8 for the news accounts' false flags), in the shape of
``TextClassifier.predict``; everything after it (the lethal-violence refinement to
``threat_to_life``, severities, alerts) is the scanner's own. The real classifier's cost is
issue 5's bench (``bench/RESULTS.md``, "posts": ~127 posts/s on two cores,
``bench/posts_throughput.py``); this bench measures what accounts and campaigns add. Post
languages are given (``en``) so that language detection, part of that cost too, is skipped.

**Measured.** *Time to surface*: a planted account crosses the threshold, by ground truth, at
the post whose history first takes the documented risk (``vigil.networks.risk``, replayed here
on the generator's labels and times) over the threshold; a campaign, at the post that makes it
hold ``text_campaign_min_posts`` posts with one flagged (the scanner's rule). The lag is given
in stream time (from that post's ``created_at`` to the newest ``created_at`` of the batch whose
commit holds the alert: an ingest that waits for 500 posts at the stream's rate waits that long;
a batch spans ~10 minutes of the 1M stream, ~100 of the 100k one) and in wall time (from
handing that post's batch to the scanner to the commit that holds the alert). *Precision* of
account alerts: planted accounts / all account alerts, the false ones listed by the kind of
account (heavy, isolated, edgy, campaign member...). *Recall*: planted accounts and campaigns
alerted. *Per 100k posts*: wall time of the scanner's batches (generation excluded), peak RSS
of the process and the database's size.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import math
import os
import pstats
import random
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, create_engine, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from vigil import review
from vigil.networks import AccountLedger
from vigil.networks.risk import RiskWeights, burst_positions, contribution, decayed
from vigil.networks.settings import NetworkSettings
from vigil.store import Database
from vigil.store.models import AccountLink, Alert, AuthorAccount, PostRecord
from vigil.text.classify import LABELS as CLASSIFIER_LABELS
from vigil.text.classify import TextClassifier, TextScore
from vigil.text.hooks import PostHook, StoredPost
from vigil.text.lexicon import Lexicon
from vigil.text.normalize import normalize
from vigil.text.posts import Post, Reach
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings
from vigil.text.triage import SEVERITY as TRIAGE_SEVERITY
from vigil.text.triage import TriagePolicy, assess

ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
)
START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86_400.0
HOUR = 3_600.0
PLATFORM = "x"

#: Ground-truth labels; ``threat_to_life`` is the classifier's ``threat_incitement`` on a text
#: that names lethal violence (the scanner's triage refines it, as it does live).
LABELS: tuple[str, ...] = (
    "",
    "offensive",
    "hate",
    "terror_support",
    "threat_incitement",
    "threat_to_life",
)
NONE, OFFENSIVE, HATE, TERROR, THREAT, THREAT_TO_LIFE = range(len(LABELS))
SEVERITY: tuple[int, ...] = (0, *(TRIAGE_SEVERITY[label] for label in LABELS[1:]))


class PostKind(IntEnum):
    BACKGROUND = 0
    BURST = 1  # a planted high-risk account's flagged run
    ISOLATED = 2  # an isolated hateful post (confounder)
    CAMPAIGN = 3  # a planted campaign's post (the first one included)
    VIRAL = 4  # a benign viral headline's post
    NEWS = 5  # a news account's update on an attack (confounder; the classifier flags some)


class AccountKind(IntEnum):
    ORDINARY = 0
    EDGY = 1
    HEAVY = 2
    ISOLATED = 3
    HIGH_RISK = 4


#: Background label rates per account kind: offensive, hate, terrorist support, threats (half
#: of them threats to life).
RATES: dict[AccountKind, tuple[float, float, float, float]] = {
    AccountKind.ORDINARY: (0.02, 0.0005, 0.00005, 0.00005),
    AccountKind.EDGY: (0.12, 0.01, 0.0005, 0.001),
    AccountKind.HEAVY: (0.01, 0.001, 0.0002, 0.0002),
    AccountKind.ISOLATED: (0.02, 0.0005, 0.00005, 0.00005),
    AccountKind.HIGH_RISK: (0.12, 0.01, 0.0005, 0.001),
}


@dataclass(frozen=True)
class StreamSpec:
    posts: int = 1_000_000
    accounts: int = 50_000
    days: float = 14.0
    high_risk: int = 50
    slow: int = 10  # of the high-risk accounts, how many are slow rather than bursts
    campaigns: int = 20
    virals: int = 20
    seed: int = 8

    @classmethod
    def scaled(cls, posts: int, accounts: int | None = None, seed: int = 8) -> StreamSpec:
        """``posts`` posts from ``accounts`` accounts (default one per 20 posts)."""
        return cls(posts=posts, accounts=accounts or max(2_000, posts // 20), seed=seed)

    @property
    def heavy(self) -> int:
        return max(10, self.accounts // 500)

    @property
    def isolated(self) -> int:
        return self.accounts // 100

    @property
    def edgy(self) -> int:
        return self.accounts // 20


@dataclass(frozen=True)
class PlantedAccount:
    account: int
    profile: str  # "burst" or "slow"
    #: The stream indices of its flagged run, in order.
    posts: tuple[int, ...]


@dataclass(frozen=True)
class Group:
    """A planted campaign or a viral headline: its posts in stream order (the first is the
    original) and the accounts that posted them."""

    index: int
    label: int
    origin: int
    accounts: frozenset[int]
    posts: tuple[int, ...]


@dataclass
class Truth:
    """The generated stream without its texts (made as it is read), and its ground truth.
    Arrays are per post, in stream order (by time): index ``i`` is post id ``i``."""

    spec: StreamSpec
    times: np.ndarray  # float64, seconds since START
    account: np.ndarray  # int32
    kind: np.ndarray  # int8 PostKind
    label: np.ndarray  # int8 index into LABELS
    likelihood: np.ndarray  # float32, the stand-in classifier's probability when flagged
    group: np.ndarray  # int16, campaign or viral index (-1)
    repost: np.ndarray  # bool: a repost of its group's first post
    account_kind: np.ndarray  # int8 AccountKind per account
    followers: np.ndarray  # int64 per account
    planted: list[PlantedAccount]
    campaigns: list[Group]
    virals: list[Group]
    #: Texts made in advance: campaign and viral posts (their copies edit one original).
    texts: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def at(self, index: int) -> datetime:
        return START + timedelta(seconds=float(self.times[index]))

    def campaign_members(self) -> dict[int, set[int]]:
        """Account -> the planted campaigns it posted in."""
        members: dict[int, set[int]] = {}
        for campaign in self.campaigns:
            for account in campaign.accounts:
                members.setdefault(account, set()).add(campaign.index)
        return members

    def digest(self) -> str:
        h = hashlib.sha256()
        for array in (self.times, self.account, self.kind, self.label, self.group, self.repost):
            h.update(np.ascontiguousarray(array).tobytes())
        for index in sorted(self.texts):
            h.update(f"{index}\x00{self.texts[index]}\x00".encode())
        return h.hexdigest()


def ref(account: int) -> str:
    return f"u{account:06d}"


# -- words ---------------------------------------------------------------------------------------

_COMMON_WORDS = (
    "the a and to of in is it you that for on was with he they at be this have from or one had "
    "by word but not what all were we when your can said there use an each which she do how "
    "their if will up other about out many then them these so some her would make like him into "
    "time has look two more write go see number no way could people my than first water been "
    "call who its now find long down day did get come made may part new today city market news "
    "game team school music weather train traffic coffee lunch weekend family friends morning "
    "night season match win lost goal bus park street river bridge festival concert movie book "
    "price shop sale phone app update video photo picture great good nice happy sad late early "
    "again really just very still never always maybe thanks please love think know want need"
)
COMMON = _COMMON_WORDS.split()
SYLLABLES = [c + v for c in "bdfglmnprstvzch" for v in "aeiou"] + ["an", "el", "or", "is", "um"]
#: The share of posts reporting an attack that the trained classifier flags as a threat (a threat
#: to life: the reports name killings), as terrorist support and as hate: its model card's
#: counter-speech set, "all" row (news, condemnations, police appeals; src/vigil/text/models/
#: text.md). Flagged at probabilities of 0.5-0.8.
NEWS_FALSE_FLAGS = (0.067, 0.117, 0.100)
NEWS = (
    "breaking: {n} people killed in a shooting at {w}, police say",
    "update: the attacker who stabbed {n} people near {w} has been arrested",
    "police confirm {n} dead after the bombing at {w}, avoid the area",
    "live: what we know about the killing of {n} people at {w}",
    "witnesses describe the shooting at {w}: {n} victims, the gunman is still at large",
)
HASHTAGS = ("#news", "#breaking", "#truth", "#wakeup", "#share", "#now", "#viral", "#rt")
EMOJI = ("🔥", "💪", "👍", "😂", "🙏", "👊", "⚡", "‼️")

TEMPLATES: dict[int, tuple[str, ...]] = {
    OFFENSIVE: (
        "shut up you {w} idiot",
        "what a stupid {w} take, damn",
        "you are a pathetic {w} clown",
    ),
    HATE: (
        "{g} are vermin and must be driven out of {w}",
        "no place for {g} in {w}, they ruin everything",
        "{g} are animals, every single one of them",
        "send the {g} back, they are a disease on {w}",
    ),
    TERROR: (
        "glory to the {o} brothers, join the caravan of {w}",
        "the lions of {o} are victorious, support the fighters of {o}",
        "pledge to {o}, the state of {w} will return and remain",
        "the martyrs of {o} showed the way, follow them to {w}",
    ),
    THREAT: (
        "we will come for {t} and make them pay at {w}",
        "{t} better watch out, we know where you sleep in {w}",
        "march on {w} tonight and drag {t} out into the street",
        "{t} will regret this, we are coming to {w}",
    ),
    THREAT_TO_LIFE: (
        "i will kill {t} when i find them at {w}",
        "someone should shoot {t} at the {w} gate",
        "we are going to stab every {g} at {w} tomorrow",
        "bomb the {w} on friday and finish {t}",
        "behead {t} and show the world in {w}",
    ),
}


class Words:
    """A Zipf-weighted vocabulary of common words and made-up ones, none of which names lethal
    violence (the triage regex) or hits the lexicon, so that only the templates do."""

    def __init__(self, seed: int, size: int = 4_000) -> None:
        rng = random.Random(seed)
        made: set[str] = set()
        while len(made) < size:
            made.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
        candidates = [*COMMON, *sorted(made)]
        rng.shuffle(candidates)
        self.words = [word for word in candidates if _safe(word)]
        weights = [1.0 / (rank + 2.7) for rank in range(len(self.words))]
        self.cumulative = list(np.cumsum(weights))
        self.groups = [w for w in self.words[100:130]]
        self.orgs = [w for w in self.words[130:150]]

    def pick(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def sentence(self, rng: random.Random, low: int, high: int) -> str:
        return " ".join(self.pick(rng, rng.randint(low, high)))

    def news(self, rng: random.Random) -> str:
        """An update on an attack (it names lethal violence, as reports do)."""
        text = rng.choice(NEWS).format(w=" ".join(self.pick(rng, 2)), n=rng.randint(2, 12))
        return f"{text} {self.sentence(rng, 4, 12)}"

    def labelled(self, rng: random.Random, label: int, target: str | None) -> str:
        """A post of ``label``: a template filled with random words, then random words, so two
        posts of one template stay far apart as near-duplicates go."""
        template = rng.choice(TEMPLATES[label])
        text = template.format(
            w=" ".join(self.pick(rng, 2)),
            g=rng.choice(self.groups),
            o=rng.choice(self.orgs),
            t=f"@{target}" if target else "them",
        )
        return f"{text} {self.sentence(rng, 4, 14)}"


_POLICY = TriagePolicy(alert_labels=frozenset({"threat_incitement"}), lexicon_alert_weight=0.8)
_LEXICON = Lexicon.default()


def _safe(word: str) -> bool:
    score = TextScore({"threat_incitement": 0.9}, ("threat_incitement",), "first", {})
    return (
        assess(word, score, [], _POLICY).label == "threat_incitement"
        and not _LEXICON.match(word)
        and word not in ("url", "user")
    )


# -- the plan ------------------------------------------------------------------------------------


def generate(spec: StreamSpec) -> Truth:
    """The whole stream's plan and ground truth (texts of campaigns and virals included; the
    others are made as the stream is read, :func:`stream`)."""
    rng = np.random.default_rng(spec.seed)
    n_accounts = spec.accounts
    account_kind = np.zeros(n_accounts, dtype=np.int8)
    order = rng.permutation(n_accounts)
    cut = np.cumsum([spec.high_risk, spec.heavy, spec.isolated, spec.edgy])
    high, heavy, isolated, edgy = np.split(order[: cut[-1]], cut[:-1])
    account_kind[high] = AccountKind.HIGH_RISK
    account_kind[heavy] = AccountKind.HEAVY
    account_kind[isolated] = AccountKind.ISOLATED
    account_kind[edgy] = AccountKind.EDGY
    followers = np.maximum(1, rng.lognormal(5.0, 1.5, n_accounts)).astype(np.int64)
    followers[heavy] *= 100
    span = spec.days * DAY

    parts: list[dict[str, np.ndarray]] = []

    def add(
        times: np.ndarray,
        accounts: np.ndarray,
        kind: PostKind,
        labels: np.ndarray,
        group: int = -1,
        repost: np.ndarray | None = None,
        likelihood: np.ndarray | None = None,
    ) -> None:
        n = len(times)
        parts.append(
            {
                "times": np.asarray(times, dtype=np.float64),
                "account": np.asarray(accounts, dtype=np.int32),
                "kind": np.full(n, kind, dtype=np.int8),
                "label": np.asarray(labels, dtype=np.int8),
                "group": np.full(n, group, dtype=np.int16),
                "repost": np.zeros(n, dtype=bool) if repost is None else repost,
                "likelihood": (
                    rng.uniform(0.7, 0.99, n) if likelihood is None else likelihood
                ).astype(np.float32),
            }
        )

    # Planted high-risk accounts: a flagged run at a planted time.
    profiles: list[tuple[int, str]] = []
    for position, account in enumerate(high):
        slow = position < spec.slow
        start = rng.uniform(2 * DAY, span - 2 * DAY - (5 * DAY if slow else 0))
        if slow:
            count, width = int(rng.integers(4, 9)), rng.uniform(2 * DAY, 5 * DAY)
        else:
            count, width = (
                int(rng.integers(6, 26)),
                math.exp(rng.uniform(math.log(HOUR), math.log(36 * HOUR))),
            )
        threats = rng.uniform(0.2, 0.8)
        labels = np.where(
            rng.random(count) < threats,
            np.where(rng.random(count) < 0.5, THREAT_TO_LIFE, THREAT),
            np.where(rng.random(count) < 0.6, TERROR, HATE),
        )
        add(
            np.sort(start + rng.uniform(0, width, count)),
            np.full(count, account),
            PostKind.BURST,
            labels,
        )
        profiles.append((int(account), "slow" if slow else "burst"))

    # Isolated hateful posts: two to four, on distinct days (at least a day apart).
    for account in isolated:
        count = int(rng.integers(2, 5))
        days = np.sort(rng.choice(np.arange(0, int(spec.days), 2), count, replace=False))
        labels = np.full(count, HATE)
        if rng.random() < 0.2:
            labels[0] = THREAT
        add(
            days * DAY + rng.uniform(0, DAY, count),
            np.full(count, account),
            PostKind.ISOLATED,
            labels,
        )

    # News accounts (half the heavy ones) cover two attacks: 5-30 updates each within three
    # hours, of which the classifier flags some (NEWS_FALSE_FLAGS).
    news = heavy[: len(heavy) // 2]
    for event in (rng.uniform(3 * DAY, 5 * DAY), rng.uniform(span - 5 * DAY, span - 3 * DAY)):
        for account in news:
            count = int(rng.integers(5, 31))
            start = event + rng.exponential(0.5 * HOUR)
            draw = rng.random(count)
            rates = np.cumsum(NEWS_FALSE_FLAGS)
            labels = np.choose(
                (draw[:, None] >= rates).sum(axis=1), [THREAT_TO_LIFE, TERROR, HATE, NONE]
            )
            add(
                np.sort(start + rng.uniform(0, 3 * HOUR, count)),
                np.full(count, account),
                PostKind.NEWS,
                labels,
                likelihood=rng.uniform(0.5, 0.8, count),
            )

    # Campaigns and virals: an original, then copies by other accounts within hours.
    pool = np.flatnonzero(
        (account_kind == AccountKind.ORDINARY)
        | (account_kind == AccountKind.EDGY)
        | (account_kind == AccountKind.ISOLATED)
    )
    shared: list[tuple[int, int, int, int]] = []  # (group, label, origin, first part index)
    for index in range(spec.campaigns + spec.virals):
        campaign = index < spec.campaigns
        low, high_count = (30, 300) if campaign else (50, 500)
        members = int(math.exp(rng.uniform(math.log(low), math.log(high_count))))
        chosen = rng.choice(pool, members + 1, replace=False)
        origin, members_at = int(chosen[0]), chosen[1:]
        copies = (
            rng.choice([1, 2, 3], members, p=[0.7, 0.2, 0.1])
            if campaign
            else np.ones(members, dtype=np.int64)
        )
        authors = np.repeat(members_at, copies)
        t0 = rng.uniform(DAY, span - DAY)
        mean_delay = rng.uniform(0.5, 3.0) * HOUR
        delays = np.minimum(12 * HOUR, 60.0 + rng.exponential(mean_delay, len(authors)))
        repost = rng.random(len(authors)) < (0.2 if campaign else 0.4)
        times = np.concatenate([[t0], t0 + delays])
        label = (TERROR if rng.random() < 0.7 else HATE) if campaign else NONE
        shared.append((index, label, origin, len(parts)))
        add(
            times,
            np.concatenate([[origin], authors]),
            PostKind.CAMPAIGN if campaign else PostKind.VIRAL,
            np.zeros(len(times)),
            group=index,
            repost=np.concatenate([[False], repost]),
        )

    # Background: the rest of the posts, spread over accounts by a heavy-tailed weight.
    special = sum(len(part["times"]) for part in parts)
    background = spec.posts - special
    if background <= 0:
        raise ValueError(f"{spec.posts} posts leave no room for the background ({special})")
    heavy_counts = (rng.uniform(0.0005, 0.003, len(heavy)) * spec.posts).astype(np.int64)
    heavy_counts = np.minimum(heavy_counts, background // (2 * len(heavy)))
    weights = rng.lognormal(0.0, 1.5, n_accounts)
    weights[heavy] = 0.0
    counts = rng.multinomial(background - int(heavy_counts.sum()), weights / weights.sum())
    counts[heavy] = heavy_counts
    accounts = np.repeat(np.arange(n_accounts, dtype=np.int32), counts)
    rates = np.array([RATES[AccountKind(k)] for k in range(len(AccountKind))])[
        account_kind[accounts]
    ]
    thresholds = np.cumsum(rates, axis=1)
    draw = rng.random(len(accounts))[:, None]
    picked = (draw >= thresholds).sum(axis=1)  # 0..3 a label, 4 none
    lethal = rng.random(len(accounts)) < 0.5
    labels = np.choose(
        picked, [OFFENSIVE, HATE, TERROR, np.where(lethal, THREAT_TO_LIFE, THREAT), NONE]
    )
    day = rng.integers(0, math.ceil(spec.days), len(accounts))
    fraction = rng.random(len(accounts))
    # A daily rhythm: fewer posts at night (a monotone warp of the hour).
    fraction = fraction - 0.12 * np.sin(2 * np.pi * fraction) / np.pi
    add(np.minimum(span - 1.0, (day + fraction) * DAY), accounts, PostKind.BACKGROUND, labels)

    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    order_by_time = np.argsort(merged["times"], kind="stable")
    rank = np.empty_like(order_by_time)
    rank[order_by_time] = np.arange(len(order_by_time))
    arrays = {key: value[order_by_time] for key, value in merged.items()}

    truth = Truth(
        spec=spec,
        times=arrays["times"],
        account=arrays["account"],
        kind=arrays["kind"],
        label=arrays["label"],
        likelihood=arrays["likelihood"],
        group=arrays["group"],
        repost=arrays["repost"],
        account_kind=account_kind,
        followers=followers,
        planted=[],
        campaigns=[],
        virals=[],
    )
    offsets = np.cumsum([0, *(len(part["times"]) for part in parts)])
    for part_index, (account, profile) in enumerate(profiles):
        indices = rank[offsets[part_index] : offsets[part_index + 1]]
        truth.planted.append(PlantedAccount(account, profile, tuple(sorted(map(int, indices)))))
    words = Words(spec.seed)
    text_rng = random.Random(spec.seed * 7919 + 1)
    for index, label, origin, part_index in shared:
        in_group = sorted(map(int, rank[offsets[part_index] : offsets[part_index + 1]]))
        group = Group(
            index=index,
            label=label,
            origin=origin,
            accounts=frozenset(int(truth.account[i]) for i in in_group),
            posts=tuple(in_group),
        )
        _group_texts(truth, group, words, text_rng)
        (truth.campaigns if index < spec.campaigns else truth.virals).append(group)
    return truth


def _group_texts(truth: Truth, group: Group, words: Words, rng: random.Random) -> None:
    """The original and its copies, and (campaigns) each copy's label: flagged when its
    normalized text's hash says so, three in four."""
    first = group.posts[0]
    if group.label == NONE:
        original = f"breaking: {words.sentence(rng, 14, 22)}"
    else:
        original = words.labelled(rng, group.label, None) + " " + words.sentence(rng, 6, 10)
    origin_ref = ref(group.origin)
    for index in group.posts:
        if index == first or truth.repost[index]:
            text = original
        else:
            text = _edited(original, rng, words)
            if rng.random() < 0.3:
                text = f"@{origin_ref} {text}"
        truth.texts[index] = text
        if group.label != NONE:
            digest = zlib.crc32(normalize(text).text.encode())
            truth.label[index] = group.label if digest % 4 else NONE
            truth.likelihood[index] = 0.7 + (digest % 29) / 100


def _edited(text: str, rng: random.Random, words: Words) -> str:
    parts = text.split()
    for _ in range(rng.choice((1, 1, 2))):
        edit = rng.randrange(5)
        if edit == 0:
            parts[rng.randrange(len(parts))] = words.pick(rng, 1)[0]
        elif edit == 1:
            parts.insert(rng.randrange(len(parts) + 1), words.pick(rng, 1)[0])
        elif edit == 2:
            parts += rng.sample(HASHTAGS, 2)
        elif edit == 3:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(EMOJI))
        else:
            parts.append(f"https://t.co/{rng.randrange(16**6):06x}")
    return " ".join(parts)


# -- the stream ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPost:
    index: int
    post: Post
    label: int
    likelihood: float


def stream(truth: Truth, start: int = 0, stop: int | None = None) -> Iterator[StreamPost]:
    """The posts in order, texts made as they are read (one seeded generator consumed in
    order: the same spec gives the same stream; ``start`` > 0 replays from the beginning)."""
    spec = truth.spec
    words = Words(spec.seed)
    rng = random.Random(spec.seed * 7919 + 2)
    recent: list[tuple[str, int]] = []
    groups = truth.campaigns + truth.virals
    stop = len(truth) if stop is None else stop
    for index in range(stop):
        account = int(truth.account[index])
        kind = PostKind(int(truth.kind[index]))
        label = int(truth.label[index])
        in_reply_to, repost_of = "", ""
        mentions: tuple[str, ...] = ()
        if kind in (PostKind.CAMPAIGN, PostKind.VIRAL):
            group = groups[int(truth.group[index])]
            text = truth.texts[index]
            if truth.repost[index]:
                repost_of = str(group.posts[0])
                mentions = (ref(group.origin),)
            elif text.startswith("@"):
                mentions = (ref(group.origin),)
        elif kind == PostKind.NEWS:
            text = words.news(rng)
        elif label != NONE:
            target = None
            if label in (THREAT, THREAT_TO_LIFE) and rng.random() < 0.5:
                target = ref(rng.randrange(spec.accounts))
                mentions = (target,)
            text = words.labelled(rng, label, target)
        else:
            roll = rng.random()
            text = words.sentence(rng, 6, 30)
            if roll < 0.12 and recent:
                in_reply_to, parent = recent[rng.randrange(len(recent))]
                text = f"@{ref(parent)} {text}"
                mentions = (ref(parent),)
            elif roll < 0.17:
                mentioned = ref(rng.randrange(spec.accounts))
                text = f"{text} @{mentioned}"
                mentions = (mentioned,)
        recent.append((str(index), account))
        if len(recent) > 2_000:
            del recent[:1_000]
        if index < start:
            continue
        author = ref(account)
        yield StreamPost(
            index=index,
            post=Post(
                id=str(index),
                platform=PLATFORM,
                author_ref=author,
                text=text,
                language="en",
                created_at=truth.at(index),
                url=f"https://x.example/{author}/status/{index}",
                reach=Reach(followers=int(truth.followers[account])),
                in_reply_to=in_reply_to,
                repost_of=repost_of,
                mentions=mentions,
            ),
            label=label,
            likelihood=float(truth.likelihood[index]),
        )


def batches(truth: Truth, size: int) -> Iterator[list[StreamPost]]:
    batch: list[StreamPost] = []
    for item in stream(truth):
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- checks of the generator ---------------------------------------------------------------------


def check_truth(truth: Truth) -> list[str]:
    """The ground truth's invariants (raises AssertionError); returns a summary."""
    spec = truth.spec
    assert len(truth) == spec.posts, (len(truth), spec.posts)
    assert np.all(np.diff(truth.times) >= 0) and truth.times[0] >= 0
    assert truth.times[-1] < spec.days * DAY
    assert len(truth.planted) == spec.high_risk
    for planted in truth.planted:
        assert truth.account_kind[planted.account] == AccountKind.HIGH_RISK
        assert all(truth.account[i] == planted.account for i in planted.posts)
        assert all(
            truth.kind[i] == PostKind.BURST and truth.label[i] >= HATE for i in planted.posts
        )
        width = truth.times[planted.posts[-1]] - truth.times[planted.posts[0]]
        assert width <= (5 if planted.profile == "slow" else 1.5) * DAY, (planted, width)
    for group in truth.campaigns + truth.virals:
        assert truth.account[group.posts[0]] == group.origin
        assert not truth.repost[group.posts[0]]
        assert truth.times[group.posts[-1]] - truth.times[group.posts[0]] <= 12 * HOUR + 60
        labels = {int(truth.label[i]) for i in group.posts}
        assert labels <= {NONE, group.label}
    for group in truth.virals:
        assert {int(truth.label[i]) for i in group.posts} == {NONE}
    # Identical normalized texts of campaign copies carry identical labels (the stand-in keys
    # on the text).
    by_text: dict[str, int] = {}
    for index, text in truth.texts.items():
        key = normalize(text).text
        assert by_text.setdefault(key, int(truth.label[index])) == truth.label[index]
    posts_per_account = np.bincount(truth.account, minlength=spec.accounts)
    flagged = truth.label >= HATE
    heaviest = int(posts_per_account[truth.account_kind == AccountKind.HEAVY].max())
    news = truth.kind == PostKind.NEWS
    return [
        f"{len(truth):,} posts over {spec.days:g} days from {int((posts_per_account > 0).sum()):,} "
        f"accounts (median {int(np.median(posts_per_account[posts_per_account > 0]))} posts, "
        f"p99 {int(np.percentile(posts_per_account, 99))}, max {int(posts_per_account.max()):,})",
        f"posts flagged hate or worse: {int(flagged.sum()):,} "
        f"({100 * flagged.mean():.2f} %); offensive: {int((truth.label == OFFENSIVE).sum()):,}",
        f"planted high-risk accounts: {len(truth.planted)} "
        f"({sum(p.profile == 'slow' for p in truth.planted)} slow), "
        f"{sum(len(p.posts) for p in truth.planted):,} flagged posts in their runs",
        f"planted campaigns: {len(truth.campaigns)}, "
        f"{sum(len(g.posts) for g in truth.campaigns):,} posts from "
        f"{sum(len(g.accounts) for g in truth.campaigns):,} account slots; virals: "
        f"{len(truth.virals)}, {sum(len(g.posts) for g in truth.virals):,} posts",
        f"confounders: {spec.heavy} heavy accounts (up to {heaviest:,} posts; half of them "
        f"news accounts that cover two attacks in {int(news.sum()):,} posts, of which the "
        f"classifier flags {int((truth.label[news] != NONE).sum()):,}), {spec.isolated} "
        f"isolated and {spec.edgy} edgy accounts",
    ]


def self_check(posts: int, seed: int) -> list[str]:
    """Determinism (same spec, same stream; another seed, another stream) and ground truth."""
    spec = StreamSpec.scaled(posts, seed=seed)
    first, second = generate(spec), generate(spec)
    assert first.digest() == second.digest()
    texts_a = [item.post.model_dump_json() for item in stream(first)]
    texts_b = [item.post.model_dump_json() for item in stream(second)]
    assert texts_a == texts_b
    tail = [item.post.model_dump_json() for item in stream(first, start=len(first) - 100)]
    assert tail == texts_a[-100:]
    other = generate(StreamSpec.scaled(posts, seed=seed + 1))
    assert other.digest() != first.digest()
    summary = check_truth(first)
    # Labels of texts: every flagged threat to life names lethal violence, no other post does
    # (so that the scanner's triage gives the generator's severity).
    score = TextScore({"threat_incitement": 0.9}, ("threat_incitement",), "first", {})
    for item, text in zip(stream(first), texts_a, strict=True):
        del text
        if item.label in (THREAT, THREAT_TO_LIFE):
            refined = assess(normalize(item.post.text).text, score, [], _POLICY).label
            assert (refined == "threat_to_life") == (item.label == THREAT_TO_LIFE), item
    return summary


# -- the pipeline --------------------------------------------------------------------------------

#: The classifier's labels (``vigil.text.classify.LABELS``) the stand-in flags for each label.
_CLASSIFIER: dict[int, tuple[str, ...]] = {
    OFFENSIVE: ("offensive",),
    HATE: ("hate", "offensive"),
    TERROR: ("terror_support",),
    THREAT: ("threat_incitement", "offensive"),
    THREAT_TO_LIFE: ("threat_incitement", "offensive"),
}


class LabelledClassifier(TextClassifier):
    """The stand-in for the trained model: ``predict`` returns, for a (normalized) text, the
    label the generator gave it, flagged with the generator's probability; any other text is
    benign. Texts are registered per batch (:meth:`expect`) and keyed by their normalized form,
    as the scanner passes them; identical texts always carry identical labels (the generator
    checks it)."""

    def __init__(self) -> None:  # no model to load
        self.thresholds = {name: 0.5 for name in CLASSIFIER_LABELS}
        self.gates = {}
        self.metadata = {"stand_in": "bench/accounts_scale.py"}
        self._scores: dict[str, TextScore] = {}
        self._benign = TextScore({name: 0.01 for name in CLASSIFIER_LABELS}, (), "first", {})

    def expect(self, items: Sequence[StreamPost]) -> None:
        self._scores.clear()
        for item in items:
            if item.label == NONE:
                continue
            flagged = _CLASSIFIER[item.label]
            probabilities = {name: 0.01 for name in CLASSIFIER_LABELS}
            probabilities.update({name: item.likelihood for name in flagged})
            score = TextScore(probabilities, flagged, "first", {})
            self._scores[normalize(item.post.text).text] = score

    def predict(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[TextScore]:
        return [self._scores.get(text, self._benign) for text in texts]


class TimedHook:
    """A post hook that times the hook it wraps (the ledger's share of a batch)."""

    def __init__(self, inner: PostHook) -> None:
        self.inner = inner
        self.seconds = 0.0

    def stored(self, session: Session, posts: Sequence[StoredPost]) -> None:
        started = time.perf_counter()
        self.inner.stored(session, posts)
        self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class Seen:
    """An account or campaign alert, as first seen after a batch committed."""

    alert_id: int
    ref: str  # content_ref: "x:u000123" or "campaign:x:456"
    batch: int


@dataclass(frozen=True)
class BatchTime:
    first: int  # stream index of its first post
    started: float  # wall seconds since the run started, when handed to the scanner
    committed: float  # and when its transaction had committed
    newest: float  # newest created_at in the batch, seconds since START


@dataclass(frozen=True)
class Checkpoint:
    posts: int
    scan_s: float  # wall seconds in the scanner so far
    hook_s: float  # of which in the ledger
    rss_mb: float
    peak_rss_mb: float
    db_mb: float


@dataclass
class Run:
    database: str
    batch_size: int
    ledger: bool
    batches: list[BatchTime] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    generate_s: float = 0.0
    observe_s: float = 0.0
    start_rss_mb: float = 0.0
    alerts: dict[str, int] = field(default_factory=dict)
    #: PostRecord.campaign_id of every post that has one: stream index -> id.
    campaign_ids: dict[int, str] = field(default_factory=dict)
    #: Planted accounts' AuthorAccount rows: account -> (peak risk, alert id).
    accounts: dict[int, tuple[float, int | None]] = field(default_factory=dict)
    #: Stored severity per ground-truth label: a check that triage agreed with the generator.
    severities: dict[int, Counter[int]] = field(default_factory=dict)
    threshold: float = 0.0
    #: Rows per table at the end.
    rows: dict[str, int] = field(default_factory=dict)

    def batch_of(self, index: int) -> int:
        return index // self.batch_size


def memory_mb() -> tuple[float, float]:
    """(RSS, peak RSS) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def database_mb(db: Database) -> float:
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            size = connection.scalar(sql("SELECT pg_database_size(current_database())"))
        return int(size or 0) / 1e6
    path = Path(db.url.split("///", 1)[-1])
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


@contextmanager
def database() -> Iterator[str]:
    """A throw-away PostgreSQL database (as bench/scale_posts.py makes them)."""
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sql(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class StatementTimes:
    """Seconds per SQL statement (its first words), per checkpoint segment: which queries grow
    with the database (``--sql-times``)."""

    def __init__(self, engine: Engine) -> None:
        self.segments: list[dict[str, float]] = [{}]
        self._started: list[float] = []
        sa_event.listen(engine, "before_cursor_execute", self._before)
        sa_event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args: object) -> None:
        self._started.append(time.perf_counter())

    def _after(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        key = " ".join(statement.split())[:110]
        segment = self.segments[-1]
        segment[key] = segment.get(key, 0.0) + time.perf_counter() - self._started.pop()

    def cut(self) -> None:
        self.segments.append({})

    def table(self, top: int = 15) -> str:
        total: dict[str, float] = {}
        for segment in self.segments:
            for key, seconds in segment.items():
                total[key] = total.get(key, 0.0) + seconds
        lines = ["seconds per segment | statement"]
        for key in sorted(total, key=lambda k: -total[k])[:top]:
            per = " ".join(f"{segment.get(key, 0.0):5.1f}" for segment in self.segments if segment)
            lines.append(f"{per} | {key}")
        return "\n".join(lines)


def run_pipeline(
    truth: Truth,
    url: str,
    home: Path,
    *,
    batch_size: int,
    ledger: bool,
    every: int,
    sql_times: bool = False,
) -> Run:
    settings = TextSettings(home=home, database_url=url)
    db = Database(url)
    statements = StatementTimes(db.engine) if sql_times else None
    run = Run(db.engine.dialect.name, batch_size, ledger)
    classifier = LabelledClassifier()
    clock = StreamClock()
    network = NetworkSettings(home=home, database_url=url)
    weights = review.PriorityWeights.of(network)
    hook = TimedHook(AccountLedger(network, weights, clock=clock)) if ledger else None
    scanner = PostScanner(db, settings, classifier=classifier, hooks=[hook] if hook else [])
    run.threshold = RiskWeights.of(network).threshold
    run.start_rss_mb = memory_mb()[0]
    last_alert = 0
    scanned = scan_s = 0.0
    origin = time.perf_counter()
    items = batches(truth, batch_size)
    while True:
        started = time.perf_counter()
        batch = next(items, None)
        if batch is None:
            break
        classifier.expect(batch)
        clock.now = truth.at(batch[-1].index)
        handed = time.perf_counter()
        run.generate_s += handed - started
        result = scanner.scan([item.post for item in batch])
        committed = time.perf_counter()
        scan_s += committed - handed
        assert result.scanned == len(batch), (result.scanned, len(batch))
        run.batches.append(
            BatchTime(
                first=batch[0].index,
                started=handed - origin,
                committed=committed - origin,
                newest=float(truth.times[batch[-1].index]),
            )
        )
        with db.session() as session:
            rows = session.execute(
                select(Alert.id, Alert.content_ref).where(
                    Alert.id > last_alert,
                    or_(Alert.source == "accounts", Alert.content_ref.like("campaign:%")),
                )
            ).all()
        for alert_id, content_ref in rows:
            run.seen.append(Seen(alert_id, content_ref, len(run.batches) - 1))
        last_alert = max([last_alert, *(r[0] for r in rows)])
        before = scanned
        scanned += len(batch)
        if int(scanned) // every > int(before) // every or int(scanned) == len(truth):
            rss, peak = memory_mb()
            run.checkpoints.append(
                Checkpoint(
                    int(scanned), scan_s, hook.seconds if hook else 0.0, rss, peak, database_mb(db)
                )
            )
            print(
                f"{int(scanned):>9,} posts  {scan_s:7.0f} s in the scanner "
                f"({hook.seconds if hook else 0.0:.0f} s ledger)  RSS {rss:,.0f} MB  "
                f"DB {run.checkpoints[-1].db_mb:,.0f} MB",
                flush=True,
            )
            if statements:
                statements.cut()
        run.observe_s += time.perf_counter() - committed
    collect(run, db, truth)
    db.dispose()
    if statements:
        print(statements.table(), flush=True)
    return run


def collect(run: Run, db: Database, truth: Truth) -> None:
    """What the run left in the database that the figures need."""
    with db.session() as session:
        for model in (PostRecord, AuthorAccount, AccountLink, Alert):
            count = session.scalar(select(func.count()).select_from(model))
            run.rows[str(model.__tablename__)] = int(count or 0)
        for source, kind, count in session.execute(
            select(Alert.source, Alert.content_kind, func.count()).group_by(
                Alert.source, Alert.content_kind
            )
        ):
            run.alerts[f"{source}/{kind}"] = int(count)
        campaigns = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.content_ref.like("campaign:%"))
        )
        run.alerts["text/campaign"] = int(campaigns or 0)
        for key, campaign_id in session.execute(
            select(PostRecord.key, PostRecord.campaign_id).where(
                PostRecord.campaign_id.is_not(None)
            )
        ):
            if campaign_id is not None:
                run.campaign_ids[int(key.split(":", 1)[1])] = campaign_id
        flagged = [
            (int(key.split(":", 1)[1]), severity)
            for key, severity in session.execute(
                select(PostRecord.key, PostRecord.severity).where(PostRecord.severity > 0)
            )
        ]
        if run.ledger:
            planted = {ref(p.account): p.account for p in truth.planted}
            for author_ref, peak, alert_id in session.execute(
                select(
                    AuthorAccount.author_ref, AuthorAccount.peak_risk, AuthorAccount.alert_id
                ).where(AuthorAccount.author_ref.in_(planted))
            ):
                run.accounts[planted[author_ref]] = (float(peak), alert_id)
    stored = dict(flagged)
    for index in np.flatnonzero(truth.label != NONE):
        label = int(truth.label[index])
        run.severities.setdefault(label, Counter())[stored.get(int(index), 0)] += 1


# -- the figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surfacing:
    """One planted account or campaign: when it crossed by ground truth, when it surfaced."""

    name: str
    profile: str
    crossing: int | None  # stream index of the post that crossed
    batch: int | None  # the batch whose commit held its alert
    stream_lag_s: float | None
    wall_lag_s: float | None
    note: str = ""


def surfacing(
    run: Run, truth: Truth, crossing: int | None, batch: int | None
) -> tuple[float | None, float | None]:
    if crossing is None or batch is None:
        return None, None
    alerted = run.batches[batch]
    stream_lag = alerted.newest - float(truth.times[crossing])
    wall_lag = alerted.committed - run.batches[run.batch_of(crossing)].started
    return stream_lag, wall_lag


def first_seen(run: Run) -> dict[str, Seen]:
    seen: dict[str, Seen] = {}
    for item in run.seen:
        seen.setdefault(item.ref, item)
    return seen


def account_surfacing(run: Run, truth: Truth, crossings: dict[int, int | None]) -> list[Surfacing]:
    seen = first_seen(run)
    out = []
    for planted in truth.planted:
        alert = seen.get(f"{PLATFORM}:{ref(planted.account)}")
        crossing = crossings.get(planted.account)
        batch = alert.batch if alert else None
        stream_lag, wall_lag = surfacing(run, truth, crossing, batch)
        peak, _ = run.accounts.get(planted.account, (0.0, None))
        span = truth.times[planted.posts[-1]] - truth.times[planted.posts[0]]
        note = f"{len(planted.posts)} flagged in {span / HOUR:.1f} h; peak risk {peak:.1f}"
        if crossing is not None:
            k = sum(1 for i in planted.posts if i <= crossing)
            note += f"; crossed at flagged post {k}"
        out.append(
            Surfacing(
                ref(planted.account), planted.profile, crossing, batch, stream_lag, wall_lag, note
            )
        )
    return out


def campaign_crossing(truth: Truth, group: Group, min_posts: int) -> int | None:
    """The post that makes the campaign hold ``min_posts`` posts with one flagged."""
    flagged = 0
    for count, index in enumerate(group.posts, start=1):
        flagged += truth.label[index] != NONE
        if count >= min_posts and flagged:
            return index
    return None


def owners(run: Run, truth: Truth) -> dict[str, str]:
    """Campaign id -> the group most of its posts belong to ("campaign 3", "viral 25") or
    "background"."""
    kinds = {i: f"campaign {g.index}" for g in truth.campaigns for i in g.posts}
    kinds.update({i: f"viral {g.index}" for g in truth.virals for i in g.posts})
    counts: dict[str, Counter[str]] = {}
    for index, campaign_id in run.campaign_ids.items():
        counts.setdefault(campaign_id, Counter())[kinds.get(index, "background")] += 1
    return {cid: counter.most_common(1)[0][0] for cid, counter in counts.items()}


def campaign_surfacing(run: Run, truth: Truth, min_posts: int) -> list[Surfacing]:
    seen = first_seen(run)
    out = []
    for group in truth.campaigns:
        ids = Counter(run.campaign_ids[i] for i in group.posts if i in run.campaign_ids)
        alerts = [seen[f"campaign:{cid}"] for cid in ids if f"campaign:{cid}" in seen]
        alert = min(alerts, key=lambda s: s.batch) if alerts else None
        crossing = campaign_crossing(truth, group, min_posts)
        batch = alert.batch if alert else None
        stream_lag, wall_lag = surfacing(run, truth, crossing, batch)
        joined = ids.most_common(1)[0][1] if ids else 0
        note = (
            f"{len(group.posts)} posts, {len(group.accounts)} accounts; "
            f"{joined} in its largest cluster" + (f", {len(ids)} clusters" if len(ids) > 1 else "")
        )
        out.append(
            Surfacing(
                f"campaign {group.index}",
                LABELS[group.label],
                crossing,
                batch,
                stream_lag,
                wall_lag,
                note,
            )
        )
    return out


def account_category(truth: Truth, account: int, members: dict[int, set[int]]) -> str:
    kind = AccountKind(int(truth.account_kind[account]))
    if kind == AccountKind.HIGH_RISK:
        return "planted"
    name = kind.name.lower()
    if any(group.origin == account for group in truth.campaigns):
        return f"{name}, campaign originator"
    if account in members:
        return f"{name}, campaign member"
    return name


def flagged_shares(
    truth: Truth, crossings: dict[int, int | None], alerted: set[int], members: dict[int, set[int]]
) -> list[str]:
    """Table rows per kind of alerted account: the flagged share of its posts, and how many
    posts, in the 24 h up to its crossing post."""
    shares: dict[str, list[tuple[float, int]]] = {}
    for account in sorted(alerted):
        crossing = crossings.get(account)
        if crossing is None:
            continue
        mine = np.flatnonzero(truth.account[: crossing + 1] == account)
        recent = mine[truth.times[mine] > truth.times[crossing] - DAY]
        flagged = int((truth.label[recent] != NONE).sum())
        category = account_category(truth, account, members)
        shares.setdefault(category, []).append((flagged / len(recent), len(recent)))
    rows = []
    for category, values in sorted(shares.items(), key=lambda item: -len(item[1])):
        share = [v[0] for v in values]
        posts = [float(v[1]) for v in values]
        rows.append(
            f"| {category} | {len(values)} | {min(share):.2f} / {percentile(share, 50):.2f} / "
            f"{max(share):.2f} | {min(posts):.0f} / {percentile(posts, 50):.0f} / "
            f"{max(posts):.0f} |"
        )
    return rows


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def surface_row(name: str, items: list[Surfacing], run: Run) -> str:
    """A table row: how many crossed by ground truth, were alerted (recall), were alerted by
    the commit of the crossing post's own batch, and the lags (median / p90 / max)."""
    crossed = [s for s in items if s.crossing is not None]
    alerted = [s for s in items if s.batch is not None]
    timed = [s for s in alerted if s.stream_lag_s is not None and s.wall_lag_s is not None]
    same = sum(1 for s in timed if s.crossing is not None and s.batch == run.batch_of(s.crossing))
    row = f"| {name} | {len(crossed)} / {len(items)} | **{len(alerted)} / {len(items)}** "
    if not timed:
        return row + "| - | - | - |"
    stream_lags = [s.stream_lag_s / 60 for s in timed if s.stream_lag_s is not None]
    wall_lags = [s.wall_lag_s for s in timed if s.wall_lag_s is not None]
    return row + (
        f"| {same} / {len(timed)} "
        f"| {percentile(stream_lags, 50):.1f} / {percentile(stream_lags, 90):.1f} / "
        f"{max(stream_lags):.1f} min | {percentile(wall_lags, 50):.2f} / "
        f"{percentile(wall_lags, 90):.2f} / {max(wall_lags):.2f} s |"
    )


def fmt_lag(item: Surfacing) -> str:
    if item.batch is None:
        return "**not alerted**"
    if item.stream_lag_s is None or item.wall_lag_s is None:
        return "alerted, never crossed by ground truth"
    return f"{item.stream_lag_s / 60:.1f} min / {item.wall_lag_s:.2f} s"


def report(
    run: Run,
    truth: Truth,
    command: str,
    crossings: dict[int, int | None],
    min_posts: int,
    load: str,
) -> str:
    accounts = account_surfacing(run, truth, crossings)
    campaigns = campaign_surfacing(run, truth, min_posts)
    members = truth.campaign_members()
    account_alerts = [s for s in first_seen(run).values() if not s.ref.startswith("campaign:")]
    categories = Counter(
        account_category(truth, int(s.ref.rsplit(":u", 1)[1]), members) for s in account_alerts
    )
    alerted = {int(s.ref.rsplit(":u", 1)[1]) for s in account_alerts}
    crossed = {account for account, index in crossings.items() if index is not None}
    expected = Counter(account_category(truth, account, members) for account in crossed)
    true_alerts = categories["planted"]
    total = len(account_alerts)
    justified = true_alerts + sum(n for name, n in categories.items() if "campaign" in name)
    owner = owners(run, truth)
    campaign_alerts = [s for s in first_seen(run).values() if s.ref.startswith("campaign:")]
    campaign_owners = Counter(
        owner.get(s.ref.removeprefix("campaign:"), "background").split()[0] for s in campaign_alerts
    )
    last = run.checkpoints[-1]
    scan_rate = last.posts / last.scan_s
    lines = [
        "# Accounts and networks at scale",
        "",
        f"`{command}`",
        "",
        f"{os.cpu_count()} CPUs (load before the run: {load}); {run.database} database; "
        f"batches of {run.batch_size} posts, each one transaction of the real `PostScanner` "
        + ("with `AccountLedger` as its post hook" if run.ledger else "**without the ledger**")
        + "; the classifier is the bench's stand-in (the generator's labels; the trained "
        "model's cost is issue 5's bench).",
        "",
        "## The stream",
        "",
        *(f"- {line}" for line in check_truth(truth)),
        "",
        "## Time to surface",
        "",
        f"A planted account crosses by ground truth at the post after which its risk, replayed "
        f"on the generator's labels with the documented formula, first reaches the threshold "
        f"({run.threshold:g}); a campaign at the post that gives it {min_posts} posts with one "
        "flagged. Lags are median / p90 / max over those surfaced: in stream time, from the "
        "crossing post's `created_at` to the newest post of the batch whose commit held the "
        "alert; in wall time, from handing the crossing post's batch to the scanner to that "
        "commit.",
        "",
        "| | crossed by ground truth | alerted (recall) | alerted by the crossing batch's "
        "commit | stream-time lag | wall-time lag |",
        "|---|---|---|---|---|---|",
        surface_row("planted accounts, all", accounts, run),
        *(
            surface_row(
                f"planted accounts, {profile}", [a for a in accounts if a.profile == profile], run
            )
            for profile in ("burst", "slow")
        ),
        surface_row("planted campaigns", campaigns, run),
        "",
        "## Precision of account alerts",
        "",
        f"{total} account alerts: **{true_alerts} planted** "
        f"(precision {true_alerts / total if total else float('nan'):.1%}); counting the "
        f"campaign members and originators, who did post flagged propaganda, as justified: "
        f"{justified / total if total else float('nan'):.1%}.",
        "",
        "The formula itself, replayed on the generator's labels for every account: which "
        "accounts it takes over the threshold, against which the pipeline alerted.",
        "",
        "| account | alerted by the pipeline | over the threshold by the replayed formula |",
        "|---|---|---|",
        *(
            f"| {name} | {categories[name]} | {expected[name]} |"
            for name in sorted(set(categories) | set(expected), key=lambda n: -expected[n])
        ),
        "",
        f"Alerted but not over the threshold by the formula: {len(alerted - crossed)}; over it "
        f"but not alerted: {len(crossed - alerted)}"
        + (
            " (" + ", ".join(ref(a) for a in sorted(crossed - alerted)[:10]) + ")"
            if crossed - alerted
            else ""
        )
        + ".",
        "",
        "What tells the alerted accounts apart: the share of an account's posts that were "
        "flagged, in the 24 h up to the post that took it over the threshold (min / median / "
        "max):",
        "",
        "| account | alerts | flagged share of its posts, last 24 h | its posts in those 24 h |",
        "|---|---|---|---|",
        *flagged_shares(truth, crossings, alerted, members),
        "",
        f"Campaign alerts: {len(campaign_alerts)} ("
        + ", ".join(f"{n} on {name} clusters" for name, n in campaign_owners.most_common())
        + "). Other queue items: "
        + ", ".join(
            f"{n:,} {name}" for name, n in sorted(run.alerts.items()) if name != "text/campaign"
        )
        + " (post alerts: a post in a campaign with a queue item joins that item instead).",
        "",
        "## Time, memory and database size per 100k posts",
        "",
        f"Scanner wall time only (generating the posts took {run.generate_s:.0f} s more, "
        f"reading the new alerts after each batch {run.observe_s:.0f} s). Overall: "
        f"**{scan_rate:,.0f} posts/s**, {last.scan_s:,.0f} s for {last.posts:,} posts, of "
        f"which {last.hook_s:,.0f} s ({last.hook_s / last.scan_s:.0%}) in the ledger hook; "
        f"RSS {run.start_rss_mb:,.0f} MB before the first batch (the stream's plan included).",
        "",
        "| posts | s per 100k (ledger) | posts/s | RSS | peak RSS | database | per 100k posts |",
        "|---|---|---|---|---|---|---|",
    ]
    previous = Checkpoint(0, 0.0, 0.0, run.start_rss_mb, run.start_rss_mb, 0.0)
    for point in run.checkpoints:
        posts = point.posts - previous.posts
        seconds = point.scan_s - previous.scan_s
        per = 100_000 / posts
        hook = (point.hook_s - previous.hook_s) * per
        lines.append(
            f"| {point.posts:,} | {seconds * per:,.0f} ({hook:,.0f}) "
            f"| {posts / seconds:,.0f} | {point.rss_mb:,.0f} MB | {point.peak_rss_mb:,.0f} MB "
            f"| {point.db_mb:,.0f} MB | {point.db_mb * 100_000 / point.posts:,.0f} MB |"
        )
        previous = point
    mismatched = sum(
        n
        for label, counts in run.severities.items()
        for severity, n in counts.items()
        if severity != SEVERITY[label]
    )
    lines += [
        "",
        "Rows at the end: " + ", ".join(f"{name} {n:,}" for name, n in run.rows.items()) + ".",
        "",
        f"Triage check: {mismatched} of {sum(sum(c.values()) for c in run.severities.values()):,} "
        "labelled posts stored with another severity than the generator's.",
        "",
        "## Each planted account",
        "",
        "| account | profile | lag (stream / wall) | |",
        "|---|---|---|---|",
        *(f"| {a.name} | {a.profile} | {fmt_lag(a)} | {a.note} |" for a in accounts),
        "",
        "## Each planted campaign",
        "",
        "| campaign | label | lag (stream / wall) | |",
        "|---|---|---|---|",
        *(f"| {c.name} | {c.profile} | {fmt_lag(c)} | {c.note} |" for c in campaigns),
    ]
    return "\n".join(lines) + "\n"


# -- ground truth of the risk --------------------------------------------------------------------


def replayed_crossings(truth: Truth, weights: RiskWeights) -> dict[int, int | None]:
    """Every account with flagged posts -> the stream index of the post at which its risk,
    replayed with :mod:`vigil.networks.risk` on the generator's labels, likelihoods and times,
    first reaches the threshold (None: never). No decisions (nobody reviews in the bench)."""
    flagged = np.flatnonzero(truth.label != NONE)
    by_account: dict[int, list[int]] = {}
    for flagged_index in flagged:
        by_account.setdefault(int(truth.account[flagged_index]), []).append(int(flagged_index))
    crossings: dict[int, int | None] = {}
    for account, indices in by_account.items():
        times = [truth.at(i) for i in indices]
        positions = burst_positions([], times)
        level, since = 0.0, times[0]
        crossings[account] = None
        for index, at, k in zip(indices, times, positions, strict=True):
            level = decayed(level, since, at, weights.half_life_hours)
            since = at
            severity = SEVERITY[int(truth.label[index])]
            level += contribution(severity, float(truth.likelihood[index]), k, 0, at, at, weights)
            if level >= weights.threshold:
                crossings[account] = index
                break
    return crossings


class StreamClock:
    """The ledger's "now": the newest post of the batch being scanned (stream time), since the
    stream is replayed faster than it was posted."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=None, help="default: posts / 20")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--every", type=int, default=100_000, help="posts between checkpoints")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-ledger", action="store_true", help="the scanner alone")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument(
        "--sql-times", action="store_true", help="print seconds per SQL statement per checkpoint"
    )
    parser.add_argument("--self-check", action="store_true", help="check the generator only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.self_check:
        for line in self_check(args.posts, args.seed):
            print(line)
        return
    load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    truth = generate(StreamSpec.scaled(args.posts, args.accounts, args.seed))
    for line in check_truth(truth):
        print(line, flush=True)
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="accounts_scale_") as name:
        home = Path(name)
        with ExitStack() as stack:
            url = (
                stack.enter_context(database())
                if args.postgres
                else f"sqlite:///{home / 'vigil.db'}"
            )
            if profiler:
                profiler.enable()
            run = run_pipeline(
                truth,
                url,
                home,
                batch_size=args.batch,
                ledger=not args.no_ledger,
                every=args.every,
                sql_times=args.sql_times,
            )
            if profiler:
                profiler.disable()
        settings = NetworkSettings(home=home)
        weights = RiskWeights.of(settings)
        crossings = replayed_crossings(truth, weights)
        min_posts = TextSettings(home=home).text_campaign_min_posts
    if profiler and args.profile:
        profiler.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)
    flags = [f"--posts {args.posts}"]
    if args.accounts:
        flags.append(f"--accounts {args.accounts}")
    if args.seed != 8:
        flags.append(f"--seed {args.seed}")
    if args.batch != 500:
        flags.append(f"--batch {args.batch}")
    flags += [f for f, on in (("--postgres", args.postgres), ("--no-ledger", args.no_ledger)) if on]
    if args.out:
        flags.append(f"--out {args.out}")
    command = ".venv/bin/python bench/accounts_scale.py " + " ".join(flags)
    text_report = report(run, truth, command, crossings, min_posts, load)
    print(text_report)
    if args.out:
        args.out.write_text(text_report, encoding="utf-8")


if __name__ == "__main__":
    main()

"""What both stages read of a text: its canonical form, and (first stage) hashed n-grams.

**Canonical form.** Texts arrive normalized (:func:`vigil.text.normalize.normalize`: case-folded,
links as ``url``, mentions as ``@user``, HTML entities decoded). The training sets still write
some things their own way (HateXplain's ``user``, GermEval's ``[@IND]`` and ``|LBR|``, a leading
``RT``), and left alone a model learns which data set a text came from instead of what it says.
:func:`canonical` writes those the one way, for training and prediction alike.

**Hashed n-grams.** Word unigrams and bigrams and character 3-5-grams inside each word (padded
with a space at each end, so prefixes and suffixes count; they carry misspelt and inflected
forms across languages). Each n-gram is hashed (CRC-32, stable across processes and platforms)
into :data:`N_FEATURES` buckets; a text's vector is its n-gram counts scaled to unit length.
A linear head's logit is then a sum over n-gram occurrences, so it splits exactly into the
contributions of the text's words and word pairs (:func:`phrase_contributions`): the
explanation is the model's own arithmetic, not a post-hoc guess.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_FEATURES = 2**18
CHAR_NGRAMS = (3, 4, 5)
#: Longer texts are cut before n-grams and embedding: a post is short, and the cut bounds
#: the cost of hostile input (the e5 model otherwise embeds a 50,000-character text in full).
MAX_CHARS = 2_000

_MASK = N_FEATURES - 1
_LINK = re.compile(r"(?:https?://|www\.)\S+|\burl\b", re.IGNORECASE)
_MENTION = re.compile(r"\[@[a-z]+\]|@\w+|\buser\b", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\|lbr\|", re.IGNORECASE)
_RETWEET = re.compile(r"^rt\s+(?=@user)")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+|@user")


def canonical(text: str) -> str:
    """A normalized text with every mention as ``@user``, every link as ``url``, no retweet
    prefix and whitespace collapsed (see the module doc)."""
    folded = text[:MAX_CHARS].casefold()
    folded = _LINK.sub(" url ", _LINE_BREAK.sub(" ", folded))
    folded = _MENTION.sub(" @user ", folded)
    return _RETWEET.sub("", _SPACE.sub(" ", folded).strip())


def words(text: str) -> list[str]:
    """The words of a canonical text, as the n-grams see them."""
    return _WORD.findall(text)


def _bucket(kind: str, gram: str) -> int:
    return zlib.crc32(f"{kind}{gram}".encode()) & _MASK


def _word_buckets(word: str) -> list[int]:
    """The unigram and character n-grams of one word."""
    padded = f" {word} "
    buckets = [_bucket("w", word)]
    for n in CHAR_NGRAMS:
        buckets.extend(_bucket("c", padded[i : i + n]) for i in range(len(padded) - n + 1))
    return buckets


def _pair_bucket(first: str, second: str) -> int:
    return _bucket("b", f"{first} {second}")


@dataclass(frozen=True)
class Ngrams:
    """A text's n-gram buckets, by the word (or word pair) they came from."""

    tokens: tuple[str, ...]
    per_word: tuple[tuple[int, ...], ...]
    per_pair: tuple[int, ...]

    def buckets(self) -> list[int]:
        return [b for group in self.per_word for b in group] + list(self.per_pair)


def ngrams(text: str) -> Ngrams:
    tokens = tuple(words(text))
    return Ngrams(
        tokens,
        tuple(tuple(_word_buckets(word)) for word in tokens),
        tuple(_pair_bucket(a, b) for a, b in itertools.pairwise(tokens)),
    )


def unit_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """A canonical text's n-gram vector, sparse: its distinct buckets and their counts scaled
    to unit length."""
    buckets = ngrams(text).buckets()
    if not buckets:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    index, counts = np.unique(np.asarray(buckets, dtype=np.int64), return_counts=True)
    values = counts.astype(np.float32)
    return index, values / np.float32(np.linalg.norm(values))


def linear_logits(texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
    """``x @ weights`` for the n-gram vectors ``x`` of canonical texts, without building
    ``x`` (``weights``: N_FEATURES x labels)."""
    result = np.zeros((len(texts), weights.shape[1]), dtype=np.float64)
    for row, text in enumerate(texts):
        index, values = unit_counts(text)
        result[row] = values @ weights[index]
    return result


def phrase_contributions(text: str, weights: np.ndarray) -> dict[str, float]:
    """Each word's and word pair's share of a linear head's logit (``weights``: one per bucket):
    the shares add up to the logit less the bias. A word's share sums all its occurrences."""
    grams = ngrams(text)
    buckets = grams.buckets()
    if not buckets:
        return {}
    _, counts = np.unique(np.asarray(buckets), return_counts=True)
    scale = 1.0 / float(np.linalg.norm(counts.astype(np.float64)))
    shares: dict[str, float] = {}
    for word, group in zip(grams.tokens, grams.per_word, strict=True):
        shares[word] = shares.get(word, 0.0) + scale * float(weights[list(group)].sum())
    pairs = itertools.pairwise(grams.tokens)
    for (first, second), bucket in zip(pairs, grams.per_pair, strict=True):
        phrase = f"{first} {second}"
        shares[phrase] = shares.get(phrase, 0.0) + scale * float(weights[bucket])
    return shares

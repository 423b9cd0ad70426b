"""The training rows: the nine text sets of ``../shared/data/text`` mapped onto vigil's labels,
deduplicated, grouped and split.

**Labels.** Each data set annotates its own scheme; :data:`MAPPINGS` turns a row's labels into
one value per vigil label: 1, 0, or :data:`UNKNOWN` where the data set says nothing about it
(the loss is masked there: a Davidson tweet is no evidence either way about terrorist support).
vigil's labels nest: ``offensive`` covers ``hate`` and ``threat_incitement`` (OLID's guidelines
count threats as offensive), so a row's known values fill its unknown ones where the nesting
forces them (:func:`_nest`): a hateful row is offensive, an inoffensive one neither hateful nor
threatening. Negatives for ``terror_support`` are the rows of every other set: none of them was
collected from supporters of a terrorist organisation, and without them the label has no
negatives at all (the pro-ISIS set is positive-only). That is a domain shift the model card
measures (counter-speech, news about attacks).

**Duplicates and groups.** Retweets and copied sentences repeat texts within and across sets.
Rows are keyed by their words (case-folded, mentions, links and an ``RT`` prefix dropped); one
row per key and data set is kept (labels that its copies disagree on become unknown). A group is
a Stormfront post (its sentences are correlated), a pro-ISIS account (the label is the
account's), else the row.

**Split.** HateXplain keeps its official division (``dev`` held out); the other sets hold out
whole groups, about :data:`HELD_OUT_FRACTION` of each set and language
(:func:`vigil.learning.grouped_holdout`). A training row whose key is also a held-out row's (the
same text in another set, or a retweet by another account) is dropped: it is neither trained on
nor scored. Keys do not chain groups together: a short text such as "url" in two sets would
otherwise join whole accounts to whole data sets.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.learning import grouped_holdout
from vigil.text.classify import LABELS

TEXT_DIR = Path("text")
UNKNOWN = -1
HELD_OUT_FRACTION = 0.2
#: The HatEval trial sample is 200 rows: half of it is the only Spanish measurement there is.
HELD_OUT_FRACTION_OF = {"hateval2019_trial": 0.5}
#: Data sets whose official division is kept instead of a seeded split.
OFFICIAL_SPLIT = frozenset({"hatexplain"})

Values = dict[str, int]
Mapping_ = Callable[[Mapping[str, Any]], Values]


@dataclass
class Example:
    """One training or evaluation row, after normalization and label mapping."""

    id: str
    dataset: str
    lang: str
    text: str
    #: One value per label of :data:`LABELS`: 1, 0 or UNKNOWN.
    targets: tuple[int, ...]
    #: The data set's own class for its standard task (None where the row has none), for the
    #: per-dataset benchmark: HateXplain 3-class, OLID task A, Davidson 3-class, ...
    native: str | None
    official_split: str
    group: str = ""
    #: "train", "held_out" or "dropped" (shares a held-out row's key, not itself held out).
    role: str = "train"
    copies: int = 1
    key: str = ""


# --------------------------------------------------------------------------------------------
# Label mappings (one per data set; see the model card for the table)

VIOLENT = frozenset({"call2violence", "support", "prospensity", "glorification"})


def _davidson(labels: Mapping[str, Any]) -> Values:
    cls = labels["class"]
    return {"hate": int(cls == "hate"), "offensive": int(cls != "neither")}


def _hatexplain(labels: Mapping[str, Any]) -> Values:
    label = labels["label"]
    if label == "undecided":
        return {}
    return {"hate": int(label == "hatespeech"), "offensive": int(label != "normal")}


def _stormfront(labels: Mapping[str, Any]) -> Values:
    # A noHate sentence may still be offensive: only its hate value is known.
    return {"hate": int(bool(labels["hate"]))}


def _ethos(labels: Mapping[str, Any]) -> Values:
    hateful = float(labels["is_hate"]) >= 0.5
    values = {"hate": int(hateful)}
    if hateful:
        values["threat_incitement"] = int(float(labels["violence"]) >= 0.5)
    return values


def _germeval(labels: Mapping[str, Any]) -> Values:
    values: Values = {}
    violence = labels.get("vio")
    # "other" is violence-related talk that is neither a call, support, propensity nor
    # glorification (reports, descriptions): not a threat, and not clearly harmless either.
    if violence in VIOLENT:
        values["threat_incitement"] = 1
    elif violence == "nothing":
        values["threat_incitement"] = 0
    if labels.get("def") is True:
        values["offensive"] = 1
    elif labels.get("def") is False and violence == "nothing":
        values["offensive"] = 0
    return values


def _olid(labels: Mapping[str, Any]) -> Values:
    return {"offensive": int(labels["a"] == "OFF")}


def _mlma(labels: Mapping[str, Any]) -> Values:
    kinds = set(labels["sentiment"])
    return {"hate": int("hateful" in kinds), "offensive": int(kinds != {"normal"})}


def _hateval(labels: Mapping[str, Any]) -> Values:
    hateful = int(labels["HS"]) == 1
    return {"hate": int(hateful), **({"offensive": 1} if hateful else {})}


def _isis(labels: Mapping[str, Any]) -> Values:
    return {"terror_support": int(bool(labels["pro_isis_account"]))}


MAPPINGS: dict[str, Mapping_] = {
    "davidson": _davidson,
    "hatexplain": _hatexplain,
    "stormfront": _stormfront,
    "ethos": _ethos,
    "germeval2026": _germeval,
    "olid": _olid,
    "mlma": _mlma,
    "hateval2019_trial": _hateval,
    "isis_fifthtribe": _isis,
}
TERROR_POSITIVE_SETS = frozenset({"isis_fifthtribe"})


def _native(dataset: str, labels: Mapping[str, Any]) -> str | None:
    """The row's class in its data set's standard task."""
    if dataset == "hatexplain":
        return None if labels["label"] == "undecided" else str(labels["label"])
    if dataset == "olid":
        return str(labels["a"])
    if dataset == "davidson":
        return str(labels["class"])
    if dataset == "stormfront":
        return "hate" if labels["hate"] else "noHate"
    if dataset == "ethos":
        return "hate" if float(labels["is_hate"]) >= 0.5 else "noHate"
    if dataset == "mlma":
        return "normal" if set(labels["sentiment"]) == {"normal"} else "toxic"
    if dataset == "germeval2026":
        violence = labels.get("vio")
        return None if violence in (None, "other") else str(violence in VIOLENT)
    if dataset == "hateval2019_trial":
        return str(int(labels["HS"]))
    return "pro_isis"


def _nest(values: Values) -> tuple[int, ...]:
    """Known values fill unknown ones where offensive ⊇ hate, threat_incitement forces them."""
    filled = dict(values)
    harmful = [name for name in ("hate", "threat_incitement") if filled.get(name) == 1]
    if harmful and "offensive" not in filled:
        filled["offensive"] = 1
    if filled.get("offensive") == 0:
        for name in ("hate", "threat_incitement"):
            filled.setdefault(name, 0)
    return tuple(filled.get(name, UNKNOWN) for name in LABELS)


def map_row(dataset: str, labels: Mapping[str, Any]) -> tuple[int, ...]:
    """vigil's targets for one row of ``dataset`` (its own ``labels`` object)."""
    values = MAPPINGS[dataset](labels)
    if values:
        values.setdefault("terror_support", int(dataset in TERROR_POSITIVE_SETS))
    return _nest(values)


# --------------------------------------------------------------------------------------------
# Loading, deduplication, groups, split

_MENTION = re.compile(r"(?:\[@\w+\]|@\w+|https?://\S+|\burl\b|\buser\b)", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def dedupe_key(text: str) -> str:
    """What makes two texts the same post: their words, case-folded, without mentions, links or
    a retweet prefix."""
    words = _WORD.findall(_MENTION.sub(" ", text.casefold()))
    if words[:1] == ["rt"]:
        words = words[1:]
    return " ".join(words)


def read_rows(data_dir: Path) -> list[dict[str, Any]]:
    """Every row of every known data set, in file order; a malformed line names its file and
    line number."""
    folder = data_dir / TEXT_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"no text data at {folder}")
    rows = []
    for dataset in sorted(MAPPINGS):
        path = folder / f"{dataset}.jsonl"
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    row = json.loads(line)
                    rows.append({**row, "source": dataset, "labels": dict(row["labels"])})
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from exc
    return rows


def load_examples(data_dir: Path, normalize: Callable[[str], str], *, seed: int) -> list[Example]:
    """The deduplicated, grouped and split rows (see the module doc)."""
    examples = _dedupe(_examples(read_rows(data_dir), normalize))
    _split(examples, seed)
    return examples


def _examples(rows: Iterable[dict[str, Any]], normalize: Callable[[str], str]) -> list[Example]:
    examples = []
    for row in rows:
        dataset = row["source"]
        targets = map_row(dataset, row["labels"])
        if all(value == UNKNOWN for value in targets):
            continue
        text = normalize(row["text"])
        examples.append(
            Example(
                id=row["id"],
                dataset=dataset,
                lang=row["lang"],
                text=text,
                targets=targets,
                native=_native(dataset, row["labels"]),
                official_split=row.get("split", "train"),
                group=_unit(row),
                key=dedupe_key(text) or f"row:{row['id']}",
            )
        )
    return examples


def _unit(row: Mapping[str, Any]) -> str:
    """The correlated unit a row belongs to: a Stormfront post, a pro-ISIS account, else
    itself."""
    identifier = str(row["id"])
    if row["source"] == "stormfront":
        return "post:" + identifier.rsplit("_", 1)[0]
    if row["source"] == "isis_fifthtribe":
        return "account:" + str(row["meta"]["account"])
    return "row:" + identifier


def _dedupe(examples: list[Example]) -> list[Example]:
    """One row per (data set, dedupe key); values its copies disagree on become unknown, and
    a HateXplain copy in ``dev`` keeps the row in ``dev``."""
    kept: dict[tuple[str, str], Example] = {}
    for example in examples:
        first = kept.setdefault((example.dataset, example.key), example)
        if first is example:
            continue
        first.copies += 1
        first.targets = tuple(
            a if a == b else UNKNOWN for a, b in zip(first.targets, example.targets, strict=True)
        )
        if first.native != example.native:
            first.native = None
        if example.official_split == "dev":
            first.official_split = "dev"
    return [e for e in kept.values() if any(value != UNKNOWN for value in e.targets)]


def _split(examples: Sequence[Example], seed: int) -> None:
    """Held-out rows: HateXplain's ``dev``, and whole groups of the other sets, stratified by
    language (a group's first row's: a pro-ISIS account tweets in English and Arabic); then
    training rows that share a held-out row's key are dropped."""
    language: dict[str, str] = {}
    for example in examples:
        language.setdefault(example.group, example.lang)
    held = np.zeros(len(examples), dtype=bool)
    for dataset in sorted({e.dataset for e in examples}):
        rows = np.array([i for i, e in enumerate(examples) if e.dataset == dataset])
        if dataset in OFFICIAL_SPLIT:
            held[rows] = [examples[i].official_split == "dev" for i in rows]
            continue
        held[rows] = grouped_holdout(
            [examples[i].group for i in rows],
            HELD_OUT_FRACTION_OF.get(dataset, HELD_OUT_FRACTION),
            seed=seed,
            strata=[language[examples[i].group] for i in rows],
        )
    held_keys = {examples[int(i)].key for i in np.flatnonzero(held)}
    for index, example in enumerate(examples):
        if held[index]:
            example.role = "held_out"
        elif example.key in held_keys:
            example.role = "dropped"


def summary(examples: Sequence[Example]) -> dict[str, Any]:
    """Row counts per data set, language and role, and known/positive counts per label."""
    by_set: dict[str, Counter[str]] = {}
    for example in examples:
        by_set.setdefault(example.dataset, Counter())[example.role] += 1
    labels = {
        name: {
            role: {
                "known": sum(e.targets[k] != UNKNOWN for e in examples if e.role == role),
                "positive": sum(e.targets[k] == 1 for e in examples if e.role == role),
            }
            for role in ("train", "held_out")
        }
        for k, name in enumerate(LABELS)
    }
    languages = Counter(f"{e.lang}/{e.role}" for e in examples)
    return {
        "datasets": {name: dict(counts) for name, counts in sorted(by_set.items())},
        "languages": dict(sorted(languages.items())),
        "labels": labels,
    }


def full_stage_sample(examples: Sequence[Example], cap: int, *, seed: int) -> np.ndarray:
    """Indices of the training rows the full stage is fitted on: at most ``cap`` per data set
    (seeded), every threat positive kept (the rarest label). Embedding is the slow part of
    training (~100 texts/s); a linear head on 388 inputs gains little past a few thousand
    rows per set, and the first stage, which is cheap, trains on every row."""
    rng = np.random.default_rng(seed)
    threat = LABELS.index("threat_incitement")
    chosen: list[int] = []
    for dataset in sorted({e.dataset for e in examples}):
        rows = [i for i, e in enumerate(examples) if e.dataset == dataset and e.role == "train"]
        kept = [i for i in rows if examples[i].targets[threat] == 1]
        rest = [i for i in rows if examples[i].targets[threat] != 1]
        take = max(0, min(len(rest), cap - len(kept)))
        chosen += kept + [rest[j] for j in sorted(rng.permutation(len(rest))[:take])]
    return np.array(sorted(chosen), dtype=np.int64)

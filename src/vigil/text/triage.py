"""Triage: from a post's scores and lexicon hits to a severity, a likelihood, an explanation and
whether a human should see it.

Severity follows the harm ladder of the issue: a threat to life (10) > incitement to violence
(8) > terrorist support (7) > hate (5) > offensive (2). The classifier has one
``threat_incitement`` label; a flagged post is a **threat to life** when it also names lethal
violence (kill, shoot, stab, bomb, behead... in the five languages vigil is trained on), since
"we should march on them" and "I will shoot them" need different speed from the police.

The likelihood is the calibrated probability of the label chosen (the flagged label with the
highest severity times probability). The queue multiplies severity, likelihood, reach and velocity
(:mod:`vigil.review.priority`).

Lexicon hits explain; they decide alone only at or above ``lexicon_alert_weight`` (a slogan such
as "baqiya wa tatamadad"). A bare organisation name is what every news report about an attack
contains, so it never raises an alert by itself: counter-speech and reporting must not be ranked
as violence (``tests/test_text_scanner.py`` measures it on the counter-speech set).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vigil.text.classify import TextScore
from vigil.text.lexicon import LexiconHit

SEVERITY: dict[str, int] = {
    "threat_to_life": 10,
    "threat_incitement": 8,
    "terror_support": 7,
    "hate": 5,
    "offensive": 2,
}

# Stems of lethal violence, matched on normalized (casefolded) text. Stems rather than words so
# that "kill", "killing", "töten", "tötet", "tuer", "tuez" all meet one entry.
_LETHAL = re.compile(
    r"\b(?:kill|murder|shoot|shot|stab|behead|slaughter|execut|bomb|blow (?:up|them)"
    r"|burn (?:them|him|her)|massacre|lynch|hang (?:them|him|her)|gas (?:them|the)"
    r"|töt|tot(?:schlag|stech)|ermord|erschieß|erschiess|abstech|köpf|spreng|vergas|aufhäng"
    r"|tuer|tuez|tuons|égorg|egorg|abattre|fusill|décapit|decapit|massacr|brûl"
    r"|matar|mata(?:d|r|remos)|asesin|disparar|degoll|fusilar|quemar"
    r")\w*"
    r"|(?:قتل|اقتلو|اذبح|ذبح|فجر|تفجير|اعدام|احرق)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TriagePolicy:
    alert_labels: frozenset[str]
    lexicon_alert_weight: float


@dataclass(frozen=True)
class Assessment:
    #: The label the post is queued under ("threat_to_life" refines "threat_incitement"), or
    #: None when nothing was flagged and no lexicon entry decides.
    label: str | None
    severity: int
    likelihood: float
    alert: bool
    explanation: str
    signals: list[dict[str, Any]]


def assess(
    text: str, score: TextScore, hits: Sequence[LexiconHit], policy: TriagePolicy
) -> Assessment:
    """Triage one post: ``text`` is its normalized text, ``score`` the classifier's output."""
    candidates = [(label, score.probabilities[label]) for label in score.flagged]
    deciding = [hit for hit in hits if hit.entry.weight >= policy.lexicon_alert_weight]
    candidates += [(hit.entry.label, hit.entry.weight) for hit in deciding]
    if not candidates:
        return Assessment(None, 0, 0.0, False, "", _signals(score, hits))
    label, likelihood = max(candidates, key=lambda c: (SEVERITY[c[0]] * c[1], c[1]))
    if label == "threat_incitement" and _LETHAL.search(text):
        label = "threat_to_life"
    alerting = label in policy.alert_labels or (
        label == "threat_to_life" and "threat_incitement" in policy.alert_labels
    )
    return Assessment(
        label=label,
        severity=SEVERITY[label],
        likelihood=likelihood,
        alert=alerting or bool(deciding),
        explanation=explain(label, score, hits),
        signals=_signals(score, hits),
    )


def explain(label: str, score: TextScore, hits: Sequence[LexiconHit]) -> str:
    """One line for the queue: the label and its probability, the phrases that drove it, the
    lexicon entries that hit."""
    parts = [f"{label.replace('_', ' ')}"]
    base = "threat_incitement" if label == "threat_to_life" else label
    if base in score.probabilities:
        parts[0] += f" (p={score.probabilities[base]:.2f}, {score.stage} model)"
    drivers = score.drivers.get(base, ())
    if drivers:
        parts.append("driven by " + ", ".join(f'"{d.phrase}"' for d in drivers[:5]))
    if hits:
        parts.append("lexicon: " + "; ".join(hit.explanation for hit in _unique(hits)))
    return " — ".join(parts)


def _unique(hits: Sequence[LexiconHit]) -> list[LexiconHit]:
    seen: set[str] = set()
    kept = []
    for hit in hits:
        if hit.entry.id not in seen:
            seen.add(hit.entry.id)
            kept.append(hit)
    return kept


def _signals(score: TextScore, hits: Sequence[LexiconHit]) -> list[dict[str, Any]]:
    signals: list[dict[str, Any]] = [
        {
            "type": "text_classifier",
            "stage": score.stage,
            "probabilities": {k: round(v, 4) for k, v in score.probabilities.items()},
            "flagged": list(score.flagged),
            "drivers": {
                label: [{"phrase": d.phrase, "weight": round(d.weight, 4)} for d in drivers]
                for label, drivers in score.drivers.items()
            },
        }
    ]
    signals += [
        {
            "type": "lexicon",
            "entry": hit.entry.id,
            "name": hit.entry.name,
            "label": hit.entry.label,
            "category": hit.entry.category,
            "term": hit.term,
            "span": [hit.start, hit.end],
            "weight": hit.entry.weight,
            "explanation": hit.explanation,
        }
        for hit in hits
    ]
    return signals

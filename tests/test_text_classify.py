"""The shipped text classifier, through its public API: clear positives are flagged,
counter-speech mostly is not, hostile input is scored without error, drivers are the model's
own arithmetic, and the gate keeps benign text in the first stage."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from vigil.text.classifier import features
from vigil.text.classify import (
    DEFAULT_MODEL,
    FIRST_STAGE_LABELS,
    LABELS,
    TextClassifier,
    TextScore,
)
from vigil.text.normalize import normalize

COUNTER_SPEECH = Path(__file__).parent / "data" / "counter_speech.jsonl"
#: The shipped model flags 11 of the 60 (18 %) as threat or terrorist support (its model card
#: lists them: news about IS claims, German condemnations); the bound keeps a small margin and
#: fails a model that reads reporting and condemnation as violence more often.
MAX_COUNTER_SPEECH_VIOLENCE = 0.25

#: Clear positives, written before the model was trained; each goes through the model.
CLEAR_POSITIVES = {
    "threat_incitement": [
        "I will find you and kill you, you won't see it coming",
        "Someone should shoot every one of those politicians, let's go do it tonight",
        "Man sollte sie alle aufhängen, jeden einzelnen von ihnen",
        "Burn their houses down, they all deserve to die",
        "Wir müssen zu den Waffen greifen und das Pack vernichten",
    ],
    "terror_support": [
        "The soldiers of the Khilafah are advancing, may Allah grant victory to the Islamic State",
        "Join the mujahideen of the Islamic State, the caliphate will remain and expand",
        "Our brothers of the Islamic State carried out a blessed martyrdom operation against "
        "the crusaders",
        "الدولة الإسلامية باقية وتتمدد بإذن الله",
        "May Allah accept the shaheed who struck the kuffar, the Dawlah is victorious",
    ],
    "hate": [
        "Muslims are filthy animals and should all be deported",
        "Jews are parasites who control everything, they are not human",
        "black people are subhuman apes",
        "all immigrants are rapists and criminals, send them back to their shithole countries",
        "Les migrants sont des cafards, il faut les chasser de France",
    ],
    "offensive": [
        "shut the fuck up you stupid bitch",
        "you are a fucking idiot",
        "what a dumb ass piece of shit",
        "t'es qu'un connard de merde",
        "you ugly retard, nobody likes you",
    ],
}
#: Of the five clear positives per label, at least this many must be flagged.
MIN_CLEAR_FLAGGED = 4
SEVERE = {"threat_incitement", "terror_support", "hate"}
EVERYDAY = [
    "the weather is lovely today, let's go for a walk in the park",
    "I just had coffee with my sister, she says hi",
    "Great goal in the second half, what a match!",
    "Does anyone know a good dentist near the station?",
    "Das Wetter ist heute schön, wir gehen spazieren",
    "Wer kommt am Samstag mit zum Flohmarkt?",
    "Le match commence à 20 heures, on se retrouve au café",
    "Je cherche une recette de gâteau au chocolat facile",
    "El concierto de anoche fue increíble, gracias a todos",
    "¿Alguien sabe a qué hora abre la biblioteca mañana?",
    "صباح الخير، الجو جميل اليوم",
    "مبروك على التخرج يا صديقي",
]
#: Share of the everyday posts that must stay in the first stage: the shipped model keeps all 12
#: there; the bound allows a few to reach the gate (hard negatives in the data sets pass it at
#: 12-18 %, see the model card).
MIN_EVERYDAY_FIRST_STAGE = 0.75


def prepared(texts: list[str]) -> list[str]:
    return [normalize(text).text for text in texts]


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    return TextClassifier.load()


def test_a_missing_artifact_names_the_training_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vigil train text"):
        TextClassifier.load(tmp_path / "text.npz")


def test_the_shipped_artifact_is_small_and_its_card_is_beside_it() -> None:
    assert DEFAULT_MODEL.stat().st_size < 5_000_000
    card = DEFAULT_MODEL.with_suffix(".md").read_text("utf-8")
    metadata = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text("utf-8"))
    for name in LABELS:
        fpr = metadata["settings"]["threshold_fpr"][name]
        assert f"| {name} | {fpr:.3f} | {metadata['thresholds'][name]:.3f} |" in card


def _check(score: TextScore, classifier: TextClassifier) -> None:
    assert set(score.probabilities) == set(LABELS)
    assert all(0.0 <= p <= 1.0 for p in score.probabilities.values())
    expected = tuple(n for n in LABELS if score.probabilities[n] >= classifier.thresholds[n])
    assert score.flagged == expected
    assert score.stage in ("first", "full")
    assert set(score.flagged) <= set(score.drivers)


@pytest.mark.parametrize("label", LABELS)
def test_clear_positives_are_flagged(classifier: TextClassifier, label: str) -> None:
    texts = CLEAR_POSITIVES[label]
    scores = classifier.predict(prepared(texts))
    missed = [t for t, s in zip(texts, scores, strict=True) if label not in s.flagged]
    assert len(texts) - len(missed) >= MIN_CLEAR_FLAGGED, missed
    for score in scores:
        _check(score, classifier)
        if label in score.flagged:
            # A severe label is flagged only after the full model confirmed it.
            assert score.stage == "full" or label in FIRST_STAGE_LABELS
            assert score.drivers[label], "a flagged label names the words that drove it"


def test_counter_speech_is_rarely_flagged_as_violence(classifier: TextClassifier) -> None:
    rows = [json.loads(line) for line in COUNTER_SPEECH.read_text("utf-8").splitlines()]
    assert len(rows) >= 50
    assert {row["lang"] for row in rows} >= {"en", "de", "fr", "ar", "es"}
    scores = classifier.predict(prepared([row["text"] for row in rows]))
    violent = [
        row["text"]
        for row, score in zip(rows, scores, strict=True)
        if {"threat_incitement", "terror_support"} & set(score.flagged)
    ]
    assert len(violent) / len(rows) <= MAX_COUNTER_SPEECH_VIOLENCE, violent


def test_everyday_posts_are_not_flagged_and_mostly_skip_the_full_stage(
    classifier: TextClassifier,
) -> None:
    scores = classifier.predict(prepared(EVERYDAY))
    for score in scores:
        _check(score, classifier)
        assert not set(score.flagged) & SEVERE, score
    first_stage = np.mean([score.stage == "first" for score in scores])
    assert first_stage >= MIN_EVERYDAY_FIRST_STAGE


def test_hostile_and_empty_input_is_scored(classifier: TextClassifier) -> None:
    texts = [
        "",
        "   ",
        "\u202e\u200b\u200d",
        "k" * 60_000,
        "🔫" * 500,
        "\U0010ffff\ud7ff\x01",
        "a " * 30_000,
    ]
    scores = classifier.predict(prepared(texts), languages=[None] * len(texts))
    assert len(scores) == len(texts)
    for score in scores:
        _check(score, classifier)


def test_languages_must_match_the_texts(classifier: TextClassifier) -> None:
    with pytest.raises(ValueError, match="languages"):
        classifier.predict(["a", "b"], languages=["en"])


def test_drivers_are_shares_of_the_first_stage_logit(classifier: TextClassifier) -> None:
    text = features.canonical(normalize("you are a fucking idiot and a liar").text)
    logits = classifier.first_logits([text])[0]
    for k in range(len(LABELS)):
        shares = features.phrase_contributions(text, classifier.first.weights[:, k])
        assert sum(shares.values()) == pytest.approx(logits[k] - classifier.first.bias[k], 1e-3)
    score = classifier.predict([text])[0]
    drivers = score.drivers["offensive"]
    assert drivers and all(d.weight > 0 for d in drivers)
    assert all(word in text for d in drivers for word in d.phrase.split())
    assert list(drivers) == sorted(drivers, key=lambda d: -d.weight)


def test_predict_is_thread_safe(classifier: TextClassifier) -> None:
    texts = prepared([t for examples in CLEAR_POSITIVES.values() for t in examples])
    expected = classifier.predict(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: classifier.predict(texts), range(4)))
    for result in results:
        for a, b in zip(result, expected, strict=True):
            assert a.flagged == b.flagged
            assert np.allclose(list(a.probabilities.values()), list(b.probabilities.values()))


def test_canonical_form_unifies_the_data_sets_placeholders() -> None:
    assert features.canonical("RT @user: user said [@IND] |LBR| see url") == (
        "@user : @user said @user see url"
    )
    assert features.canonical("x" * 10_000) == "x" * features.MAX_CHARS

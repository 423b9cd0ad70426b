"""Triage: severity ladder, threat to life, lexicon hits that decide or only explain."""

from __future__ import annotations

from vigil.text.classify import LABELS, Driver, TextScore
from vigil.text.lexicon import Lexicon
from vigil.text.normalize import normalize
from vigil.text.triage import SEVERITY, TriagePolicy, assess

POLICY = TriagePolicy(
    alert_labels=frozenset({"threat_incitement", "terror_support", "hate"}),
    lexicon_alert_weight=0.8,
)


def score(
    flagged: dict[str, float], drivers: dict[str, tuple[Driver, ...]] | None = None
) -> TextScore:
    probabilities = {label: flagged.get(label, 0.01) for label in LABELS}
    return TextScore(
        probabilities=probabilities,
        flagged=tuple(flagged),
        stage="full",
        drivers=drivers or {},
    )


def test_nothing_flagged_is_no_alert() -> None:
    text = normalize("lovely weather at the seaside today").text
    result = assess(text, score({}), Lexicon.default().match(text), POLICY)
    assert result.label is None
    assert result.severity == 0
    assert not result.alert


def test_the_worst_flagged_label_wins() -> None:
    text = normalize("they are vermin and should leave").text
    result = assess(text, score({"hate": 0.9, "offensive": 0.95}), [], POLICY)
    assert result.label == "hate"
    assert result.severity == SEVERITY["hate"]
    assert result.likelihood == 0.9
    assert result.alert


def test_offensive_alone_is_kept_but_does_not_alert_by_default() -> None:
    text = normalize("what an idiot").text
    result = assess(text, score({"offensive": 0.9}), [], POLICY)
    assert result.label == "offensive"
    assert not result.alert


def test_a_threat_naming_lethal_violence_is_a_threat_to_life() -> None:
    for sentence in (
        "I am going to shoot every one of them tomorrow",
        "wir werden sie alle erschießen",
        "on va tous les égorger",
        "vamos a matarlos a todos",
        "سوف نقتلهم جميعا",
    ):
        text = normalize(sentence).text
        result = assess(text, score({"threat_incitement": 0.8}), [], POLICY)
        assert result.label == "threat_to_life", sentence
        assert result.severity == 10
        assert result.alert


def test_a_call_to_violence_without_lethal_words_is_incitement() -> None:
    text = normalize("everyone get out there tonight and make them pay").text
    result = assess(text, score({"threat_incitement": 0.7}), [], POLICY)
    assert result.label == "threat_incitement"
    assert result.severity == SEVERITY["threat_incitement"]


def test_explanation_names_drivers_and_lexicon_entries() -> None:
    text = normalize("baqiya wa tatamadad, join the dawlah").text
    hits = Lexicon.default().match(text)
    assert hits, "the shipped lexicon knows the Islamic State slogan"
    drivers = {"terror_support": (Driver("dawlah", 1.2), Driver("join", 0.4))}
    result = assess(text, score({"terror_support": 0.85}, drivers), hits, POLICY)
    assert result.label == "terror_support"
    assert '"dawlah"' in result.explanation
    assert "lexicon:" in result.explanation
    kinds = [signal["type"] for signal in result.signals]
    assert kinds[0] == "text_classifier"
    assert "lexicon" in kinds


def test_a_strong_lexicon_hit_alerts_even_when_the_classifier_does_not_flag() -> None:
    text = normalize("baqiya wa tatamadad").text
    hits = [hit for hit in Lexicon.default().match(text) if hit.entry.weight >= 0.8]
    assert hits
    result = assess(text, score({}), hits, POLICY)
    assert result.alert
    assert result.label == hits[0].entry.label


def test_a_bare_organisation_name_in_a_news_report_does_not_alert() -> None:
    text = normalize("Police say Islamic State claimed the attack; the victims were named").text
    hits = Lexicon.default().match(text)
    assert hits, "the report names a proscribed organisation"
    assert all(hit.entry.weight < POLICY.lexicon_alert_weight for hit in hits)
    result = assess(text, score({}), hits, POLICY)
    assert not result.alert
    assert any(signal["type"] == "lexicon" for signal in result.signals)

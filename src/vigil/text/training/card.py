"""The model card ``text.md``, written from the metadata in ``text.json`` (so the card and the
artifact never disagree)."""

from __future__ import annotations

from typing import Any

from vigil.learning import markdown_table
from vigil.text.classify import LABELS

MAPPING_HEADER = ["data set", *(f"{name} ←" for name in LABELS)]
MAPPING = [
    [
        "GermEval 2026 (de)",
        "`vio` call2violence, support, prospensity, glorification; "
        "`vio` nothing → 0; `other` unknown",
        "-",
        "-",
        "`def` true → 1; `def` false with `vio` nothing → 0",
    ],
    [
        "ETHOS (en)",
        "`violence` ≥ 0.5 (hateful rows only; a non-hateful row is inoffensive → 0)",
        "-",
        "`is_hate` ≥ 0.5",
        "-",
    ],
    ["pro-ISIS tweets (en, ar)", "-", "1 (per account: noisy)", "-", "-"],
    ["Davidson (en)", "-", "-", "class hate", "class hate or offensive"],
    ["HateXplain (en)", "-", "-", "hatespeech", "hatespeech or offensive (undecided: dropped)"],
    ["Stormfront (en)", "-", "-", "hate", "hate → 1, noHate unknown"],
    ["OLID (en)", "-", "-", "-", "task A OFF"],
    ["MLMA (en, fr, ar)", "-", "-", "`hateful` in sentiment", "sentiment other than only `normal`"],
    ["HatEval trial (en, es)", "-", "-", "HS", "HS → 1, else unknown"],
]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _label_rows(metrics: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in LABELS:
        m = metrics.get(name)
        if m is None:
            continue
        rows.append(
            [
                name,
                m["positives"],
                m["negatives"],
                m["precision"],
                m["recall"],
                m["fpr"],
                m["f1"],
                m["auc"],
            ]
        )
    return rows


LABEL_HEADER = ["label", "positives", "negatives", "precision", "recall", "FPR", "F1", "AUC"]


def _grid(groups: dict[str, dict[str, Any]], key: str) -> str:
    """Rows: data sets or languages; columns: each label's ``key`` (n/a where unknown)."""
    header = ["", *(f"{name} {key}" for name in LABELS)]
    rows = [
        [group, *((metrics.get(name) or {}).get(key) for name in LABELS)]
        for group, metrics in groups.items()
    ]
    return markdown_table(header, rows)


def model_card(metadata: dict[str, Any]) -> str:
    m = metadata["metrics"]
    settings = metadata["settings"]
    data = metadata["data"]
    gate = m["gate"]
    sizes = markdown_table(
        ["data set", "training rows", "held-out rows", "dropped (text also held out)"],
        [
            [name, c.get("train", 0), c.get("held_out", 0), c.get("dropped", 0)]
            for name, c in data["datasets"].items()
        ],
    )
    label_sizes = markdown_table(
        ["label", "training known", "training positive", "held-out known", "held-out positive"],
        [
            [
                name,
                v["train"]["known"],
                v["train"]["positive"],
                v["held_out"]["known"],
                v["held_out"]["positive"],
            ]
            for name, v in data["labels"].items()
        ],
    )
    languages = markdown_table(
        ["language / role", "rows"], [[k, v] for k, v in data["languages"].items()]
    )
    operating = markdown_table(
        ["label", "out-of-fold FPR target", "threshold (calibrated P)", "gate (first-stage P)"],
        [
            [
                name,
                settings["threshold_fpr"][name],
                metadata["thresholds"][name],
                metadata["gates"].get(name, "none: first stage only"),
            ]
            for name in LABELS
        ],
    )
    stages = markdown_table(
        ["label", "AUC first stage", "AUC full model", "AUC shipped pipeline"],
        [
            [
                name,
                m["first"]["all"][name]["auc"],
                m["full"]["all"][name]["auc"],
                m["pipeline"]["all"][name]["auc"],
            ]
            for name in LABELS
        ],
    )
    calibration = markdown_table(
        ["label", "Brier", "Brier of the base rate", "ECE (10 bins)"],
        [
            [
                name,
                m["pipeline"]["all"][name]["brier"],
                m["pipeline"]["all"][name]["brier_base_rate"],
                m["pipeline"]["all"][name]["ece"],
            ]
            for name in LABELS
        ],
    )
    native = markdown_table(
        ["data set (its own task)", "held-out rows", "macro-F1", "accuracy", "macro-F1 full model"],
        [
            [name, v["rows"], v["macro_f1"], v["accuracy"], m["native_full"][name]["macro_f1"]]
            for name, v in m["native"].items()
        ],
    )
    tuned = m["tuned"]
    tuned_table = markdown_table(
        ["data set", "thresholds tuned on its training folds", "macro-F1", "balanced accuracy"],
        [
            [
                name,
                ", ".join(f"{label} {t:.2f}" for label, t in rule.items()),
                tuned["native"][name]["macro_f1"],
                tuned["native"][name].get("balanced_accuracy"),
            ]
            for name, rule in tuned["thresholds"].items()
        ],
    )
    gate_table = markdown_table(
        ["label", "held-out rows the full model flags", "share the gate passes"],
        [[name, v["flagged"], v["retained"]] for name, v in gate["per_label"].items()],
    )
    harmless_table = markdown_table(
        ["data set", "pass rate"], list(gate["harmless_pass_rate_per_set"].items())
    )
    tradeoff_table = markdown_table(
        ["per-label retention", "overall retention", "pass rate, no known harm"],
        [
            [r["per_label_retention"], r["retention"], r["harmless_pass_rate"]]
            for r in m["gate_tradeoff"]
        ],
    )
    speed = m["speed"]
    training_rows = sum(c.get("train", 0) for c in data["datasets"].values())
    offensive_share = data["labels"]["offensive"]["train"]["positive"] / training_rows
    ngrams = f"{settings['char_ngrams'][0]}-{settings['char_ngrams'][-1]}"
    return f"""# Text classifiers (`text`)

`vigil.text.classify.TextClassifier`, trained by `vigil.text.training` (`vigil train text`).
Labels: {", ".join(f"`{name}`" for name in LABELS)}; `offensive` covers `hate` and
`threat_incitement`. Input: text normalized by `vigil.text.normalize.normalize` (as in training),
then put in canonical form (mentions `@user`, links `url`, the data sets' own placeholders
unified, cut to {settings["max_chars"]:,} characters).

- **First stage**, every post: word unigrams and bigrams and character {ngrams}-grams, hashed
  (CRC-32) into {settings["n_features"]:,} buckets, unit-length counts, one linear head per label,
  Platt-calibrated on out-of-fold logits. Numpy; the weights ship as float16.
- **Full stage**, posts the gate passes: the embedding (384) of {settings["embedding"]}, plus
  the first stage's four logits, one linear head per label, Platt-calibrated on out-of-fold
  logits.
- **Gate**: the full stage runs when a severe label's first-stage probability reaches its
  gate. `offensive` is a first-stage label (see Gate below).
- **Drivers**: the words and word pairs with the largest shares of the first stage's logit
  for the label (exact: the head is linear in n-gram counts). The full stage's embedding part is
  not itemised.

Probabilities are calibrated at the training mixture's base rates ({offensive_share:.0%} of the
training rows are offensive); on a live stream, where harm is rare, precision at the same
threshold is lower than in the tables below.

## Data and label mapping

`../shared/data/text`. A label a data set does not annotate is unknown for its rows (masked
out of the loss), not negative, with two exceptions: nesting (an inoffensive row is neither
hateful nor threatening; a hateful or threatening row is offensive) and `terror_support`,
which is 0 for every row outside the pro-ISIS set (no other set was collected from supporters
of a terrorist organisation, and the pro-ISIS set has no negatives of its own).

{markdown_table(MAPPING_HEADER, MAPPING)}
**Domain shift** (`terror_support`): its positives are all 2015-16 tweets from 93 pro-ISIS
accounts (many of them news and chatter: the label is the account's), its negatives other
collections. The canonical form removes the surface differences (placeholders, retweet
prefixes) and the split holds out whole accounts, so the held-out figures measure new
accounts, not new tweets of known ones; what it cannot remove is topic: news about Syria and
IS reads like the positives. The counter-speech measurement below is the check.

**Split.** Texts deduplicated (words, case-folded, without mentions, links or `RT`) within each
set; HateXplain's official `dev` held out; the other sets hold out whole groups (Stormfront
post, pro-ISIS account, else the row), {settings["held_out_fraction"]:.0%} of each set and
language (the HatEval trial sample: half), seed {metadata["seed"]}; training rows sharing a
held-out row's text are dropped. The held-out ids hash to `{metadata["held_out_sha256"][:16]}…`.
The full stage is fitted on at most {settings["full_stage_cap"]:,} training rows per set
(every threat positive kept; {settings["full_stage_rows"]:,} rows): embedding is the slow part.

{sizes}
{label_sizes}
{languages}
## Operating points

Per label, the threshold is the lowest calibrated probability at which at most the given share
of out-of-fold negatives (training folds) is flagged: a false-positive rate does not move with
the training mixture's base rates, which are far above a live stream's. The gate is the
first-stage probability that passes
{settings["gate_retention"]:.1%} of the out-of-fold rows the full model flags for that label.
The held-out rows set neither.

{operating}
## Held-out results (the shipped pipeline: gate, then the full model where it ran)

{markdown_table(LABEL_HEADER, _label_rows(m["pipeline"]["all"]))}
Per stage (AUC on the same rows):

{stages}
### Per data set

F1 at the operating thresholds:

{_grid(m["pipeline"]["datasets"], "f1")}
AUC:

{_grid(m["pipeline"]["datasets"], "auc")}
### Per language

F1 at the operating thresholds:

{_grid(m["pipeline"]["languages"], "f1")}
AUC:

{_grid(m["pipeline"]["languages"], "auc")}
### Each data set's own task

vigil's flags read as the data set's classes (hate flagged → the hate class; else offensive,
hate or threat flagged → the offensive class; else normal), at vigil's operating thresholds:
the general model, not tuned per data set. Stormfront balanced accuracy (every held-out hate
row and as many noHate rows): {m["native"].get("stormfront", {}).get("balanced_accuracy", 0):.3f}.

{native}
The issue's targets (HateXplain 3-class macro-F1 ≥ 0.70, OLID task A ≥ 0.80, Stormfront balanced
accuracy ≥ 0.85) are not met; `bench/results/text_quality.md` sets these figures beside
hatesonar and alt-profanity-check on the same rows. OLID suffers most from the offensive
threshold (10 % of the mixture's hard negatives): OLID's OFF includes mild profanity that the
Davidson-dominated offensive positives rank low.

The same model read with thresholds tuned per data set on its own out-of-fold training scores
(held-out rows unused; the data sets the issue sets targets for):

{tuned_table}
## Gate

`offensive` is decided by the first stage alone (its AUC above: the full stage adds little,
and gating on the common label would embed most posts); the gate is on
{", ".join(f"`{name}`" for name in gate["per_label"])}. Of the {gate["full_flagged"]:,}
held-out rows the full model flags for one of them, the gate passes {_pct(gate["retention"])}.
It passes {_pct(gate["pass_rate"])} of all held-out rows, {_pct(gate["benign_pass_rate"])} of the
{gate["benign_rows"]:,} inoffensive ones and {_pct(gate["harmless_pass_rate"])} of the
{gate["harmless_rows"]:,} with no known harm. These are hard negatives: every set but GermEval
was collected around hate keywords or from an extremist forum, so they read like the positives;
a live stream's everyday posts pass far less often (the `bench/` throughput run measures it).

{gate_table}
Pass rate of rows with no known harm, per data set:

{harmless_table}
Cost against retention, out-of-fold on the training rows (per-label retention is what the gate
is set to; the shipped gate uses {settings["gate_retention"]}):

{tradeoff_table}
## Calibration (held-out, shipped pipeline)

{calibration}
{_counter_speech_section(m.get("counter_speech"))}
## Speed

First stage (features, head, calibration, gate): {speed["first_stage_per_s"]:,.0f} texts/s on one
thread; e5 embedding: {speed["embedding_per_s"]:,.0f} texts/s on the machine's threads; both
measured during training on the shared 2-core development machine (indicative only; `bench/`
has the throughput benchmark).

## Known weaknesses

- **Counter-speech and reporting**: the model reads words, not stance. Condemnations and news
  that name the same groups and acts as the positives score higher than other benign text
  (table above); triage must not rank them as violence on the score alone.
- **Sarcasm, irony and context**: single posts only; Stormfront sentences whose label depends on
  the previous sentence, and irony, are beyond a bag of n-grams and a small embedding.
- **terror_support is an account-level label** (see the domain shift above): a flag means "reads
  like the pro-ISIS accounts of 2015-16", which includes their news and chatter; other
  organisations (far-right terrorism, other jihadist groups) are covered by the lexicon layer,
  not by this label.
- **threat_incitement** rests on {data["labels"]["threat_incitement"]["train"]["positive"]}
  training positives, most of them German (GermEval), the rest English (ETHOS): French, Arabic
  and Spanish threats are found through the multilingual embedding and shared n-grams only.
- **Languages**: German has no hate annotation; Arabic and French hate and offensive language
  come from MLMA alone, Spanish from 50 HatEval trial rows (too few to measure: treat the
  Spanish figures as a smoke test).
- **Label schemes disagree** (Davidson's hate/offensive boundary, OLID's profanity, MLMA's
  topical tweets); the data sets' own-task scores are measured through vigil's labels.

## Reproduce

From the repository root (embeddings are cached under `~/.cache/vigil` or `$VIGIL_HOME/cache`):

    .venv/bin/{metadata["command"]} --out src/vigil/text/models

Training took {m["training_seconds"]:g} s on the shared 2-core development machine (code
`{metadata["code_commit"]}`).
"""


def _counter_speech_section(result: dict[str, Any] | None) -> str:
    if result is None:
        return "## Counter-speech\n\nNot measured (no counter-speech file given).\n"
    kinds = markdown_table(
        ["kind", *LABELS],
        [
            ["all", *(result["flagged"][name] for name in LABELS)],
            *([kind, *(v[name] for name in LABELS)] for kind, v in result["kinds"].items()),
        ],
    )
    flagged = (
        "\n".join(f"- {', '.join(e['flagged'])}: {e['text']}" for e in result["examples"])
        or "- none"
    )
    return f"""## Counter-speech

`{result["file"]}`: {result["rows"]} hand-written posts in English, German, French, Arabic and
Spanish that must not read as violence: news about attacks, condemnations of terrorism,
counter-speech that quotes hate to reject it, support for victims, police appeals. Never
trained on. Share flagged per label at the operating thresholds:

{kinds}
Flagged as threat or terrorist support:

{flagged}
"""

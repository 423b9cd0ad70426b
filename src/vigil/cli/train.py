"""``vigil train``: train the detection heads vigil ships from the developer data.

Each command is reproducible (fixed seed, grouped held-out split) and writes an artifact plus a
model card; run with the defaults to regenerate the committed ones.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.live.training import MODELS_DIR

#: The text classifier's artifacts (package data); a constant here so that ``--help`` does not
#: import the text package.
TEXT_MODELS_DIR = Path(__file__).resolve().parents[1] / "text" / "models"

train_app = typer.Typer(
    help="Train the detection heads (audio, weapon, text) from the developer data."
)

DEFAULT_DATA = Path("../shared/data")


@train_app.command("audio")
def train_audio(
    data: Path = typer.Option(DEFAULT_DATA, help="The developer data folder (holds audio/sesa)."),
    out: Path = typer.Option(MODELS_DIR, help="Where the artifact and model card are written."),
    seed: int = typer.Option(0, help="Random seed (split and model)."),
) -> None:
    """Gunshot/explosion audio head, calibrated, on SESA (gunshot vs explosion/siren/casual)."""
    from vigil.live.training.audio import train

    card = train(data, out, seed=seed)
    typer.echo(card.read_text(encoding="utf-8"))


@train_app.command("weapon")
def train_weapon(
    data: Path = typer.Option(DEFAULT_DATA, help="The developer data folder (weapons, faces...)."),
    out: Path = typer.Option(MODELS_DIR, help="Where the artifact and model card are written."),
    seed: int = typer.Option(0, help="Random seed (split and model)."),
) -> None:
    """Weapon-in-view head on EfficientNet-Lite0 features, with its ImageNet weapon classes as
    a prior."""
    from vigil.live.training.weapon import train

    card = train(data, out, seed=seed)
    typer.echo(card.read_text(encoding="utf-8"))


@train_app.command("text")
def train_text(
    data: Path = typer.Option(DEFAULT_DATA, help="The developer data folder (holds text/)."),
    out: Path = typer.Option(
        TEXT_MODELS_DIR, help="Where the artifact and model card are written."
    ),
    seed: int = typer.Option(0, help="Random seed (split, folds, samples)."),
    cache: Path | None = typer.Option(
        None, help="Embedding cache folder (default: $VIGIL_HOME/cache or ~/.cache/vigil)."
    ),
) -> None:
    """Text classifiers (threat/incitement, terrorist support, hate, offensive): hashed n-gram
    first stage, multilingual-e5 full stage, calibrated, with a model card."""
    from vigil.text.training import train

    card = train(data, out, seed=seed, cache_dir=cache)
    typer.echo(card.read_text(encoding="utf-8"))

"""``vigil faces eval``: measure the configured face models on LFW and write the embedder's
model card, whose operating threshold face search then uses.

Run with the defaults to regenerate the shipped card (``src/vigil/faces/cards/``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.cli.common import emit_json, stderr, stdout
from vigil.faces.engine import CARDS_DIR
from vigil.faces.models import FaceModelError
from vigil.faces.settings import FacesSettings

#: The developer data sits beside the repository (``../shared/data``).
DEVELOPER_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
DEFAULT_DATA = DEVELOPER_DATA / "faces" / "lfw"
DEFAULT_TARGET_FMR = 1e-4


def eval_command(
    data: Path = typer.Option(
        DEFAULT_DATA, help="An LFW-format folder: images/<Name>/<Name>_NNNN.jpg, pairs.txt..."
    ),
    out: Path = typer.Option(CARDS_DIR, help="Where the model card (.json and .md) is written."),
    target_fmr: float = typer.Option(
        DEFAULT_TARGET_FMR,
        min=1e-7,
        max=0.1,
        help="The operating threshold is the lowest whose false match rate over every "
        "cross-identity pair of images is at most this.",
    ),
    workers: int = typer.Option(2, min=1, max=64, help="Processes that embed images."),
    json_output: bool = typer.Option(False, "--json", help="Print the card's JSON."),
) -> None:
    """Measure face verification (LFW 10-fold), the operating threshold and 1:N
    identification, and write the embedder's model card."""
    from vigil.faces.evaluation import (
        LfwError,
        configured_models,
        embed_lfw,
        evaluate,
        read_lfw,
        write_card,
    )

    settings = FacesSettings()
    try:
        lfw = read_lfw(data)
        with _progress_bar(len(lfw.images)) as progress:
            templates = embed_lfw(
                lfw,
                partial(configured_models, settings),
                options=_template_options(settings),
                workers=workers,
                progress=progress,
            )
        result = evaluate(
            lfw,
            templates,
            target_fmr=target_fmr,
            command=_command(data, target_fmr),
            data_label=_shown(data),
        )
    except (LfwError, FaceModelError) as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    json_path, markdown_path = write_card(result, out)
    if json_output:
        emit_json(result)
        return
    _print_summary(result)
    stdout.print(f"Model card: {markdown_path} and {json_path}", soft_wrap=True)


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields the function that advances it."""
    with Progress(
        TextColumn("embedding faces"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("embedding faces", total=total)
        yield lambda done: bar.advance(task, done)


def _template_options(settings: FacesSettings) -> dict[str, Any]:
    """Settings that change templates without changing a model's name."""
    if settings.faces_detector == "dlib":
        return {"detector_upsample": settings.faces_detector_upsample}
    return {}


def _shown(data: Path) -> str:
    """The data folder as the card shows it: ``shared/data/...`` when it is in the developer
    data, so that the committed card holds no machine's paths."""
    resolved, base = data.resolve(), DEVELOPER_DATA.parents[1]
    if resolved.is_relative_to(DEVELOPER_DATA):
        return resolved.relative_to(base).as_posix()
    return str(data)


def _command(data: Path, target_fmr: float) -> str:
    command = "vigil faces eval"
    if data.resolve() != DEFAULT_DATA.resolve():
        command += f" --data {_shown(data)}"
    if target_fmr != DEFAULT_TARGET_FMR:
        command += f" --target-fmr {target_fmr:g}"
    return command


def _print_summary(result: dict[str, Any]) -> None:
    point = result["operating_point"]
    verification = result["verification"]
    ident = result["identification"]
    data = result["data"]
    lines = [
        f"{result['model']} with {result['detector']} on {data['path']}: "
        f"{data['embedded']:,} images of {data['identities']:,} identities, "
        f"{data['fell_back_to_central_box']} without a detected face (central box)",
    ]
    if folds := verification.get("ten_fold"):
        lines.append(
            f"verification, 10-fold: {100 * folds['mean_accuracy']:.2f} % "
            f"± {100 * folds['std']:.2f} % over {verification['pairs']:,} pairs"
        )
    non_mated = ident["non_mated"]["distractor_probes"]
    lines += [
        f"operating threshold {point['threshold']:.4f}: FMR {point['false_match_rate']:.2e} "
        f"of {point['impostor_pairs']:,} impostor pairs, FNMR {point['false_non_match_rate']:.2e} "
        f"of {point['genuine_pairs']:,} genuine pairs",
        f"1:N, gallery of {ident['gallery']:,}: rank-1 {100 * ident['rank']['1']:.2f} %, "
        f"identified at the threshold {100 * ident['identification_rate_at_threshold']:.2f} %, "
        f"non-mated probes with a candidate {non_mated['false_positives']} of "
        f"{non_mated['probes']}",
    ]
    for line in lines:
        stdout.print(line, soft_wrap=True, highlight=False)

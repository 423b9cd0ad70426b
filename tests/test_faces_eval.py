"""``vigil faces eval``: the LFW readers on a small LFW-format folder of real LFW images (with
bad lines and missing files), the verification, threshold and identification maths on
synthetic templates with known answers, real templates from dlib's models (two worker
processes, the on-disk cache, the central-box fallback) and the model card read back by the
engine."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vigil.cli.faces_eval import eval_command
from vigil.faces.engine import read_operating_point
from vigil.faces.evaluation import (
    ImageRef,
    LfwError,
    Templates,
    best_threshold,
    configured_models,
    embed_lfw,
    evaluate,
    identification,
    operating_point,
    pair_scores,
    read_lfw,
    ten_fold,
    write_card,
)
from vigil.faces.settings import FacesSettings

# Real LFW images copied into the small folder; Gerhard_Schroeder_0002 is his first image
# upside down, in which dlib's frontal detector finds no face.
REAL_IMAGES = {"Colin_Powell": 3, "Donald_Rumsfeld": 2, "Aaron_Eckhart": 1, "Gerhard_Schroeder": 1}
PEOPLE = """Colin_Powell\t3
Donald_Rumsfeld\t2
Aaron_Eckhart\t1
Gerhard_Schroeder\t2
Broken_Image\t1
Missing_Person\t1
a line that is not a count
"""
PAIRS = """# a comment line, as the shared data's first line
Colin_Powell\t1\t2
Colin_Powell\t2\t3
Donald_Rumsfeld\t1\t2
Gerhard_Schroeder\t1\t2
Colin_Powell\t1\tDonald_Rumsfeld\t1
Aaron_Eckhart\t1\tColin_Powell\t3
Donald_Rumsfeld\t2\tGerhard_Schroeder\t1
Missing_Person\t1\tColin_Powell\t1
Colin_Powell\t1
Colin_Powell\tone\t2
"""
FOLDS = """fold,name1,imagenum1,name2,imagenum2,same
0,Colin_Powell,1,Colin_Powell,2,1
1,Colin_Powell,2,Colin_Powell,3,1
0,Donald_Rumsfeld,1,Donald_Rumsfeld,2,1
1,Gerhard_Schroeder,1,Gerhard_Schroeder,2,1
0,Colin_Powell,1,Donald_Rumsfeld,1,0
1,Aaron_Eckhart,1,Colin_Powell,3,0
0,Missing_Person,1,Colin_Powell,1,0
not,a,row
"""


def lfw_image(root: Path, name: str, number: int) -> Path:
    return root / "images" / name / f"{name}_{number:04d}.jpg"


@pytest.fixture(scope="module")
def small_lfw(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import cv2

    source = shared_data / "faces" / "lfw"
    root = tmp_path_factory.mktemp("lfw")
    for name, count in REAL_IMAGES.items():
        (root / "images" / name).mkdir(parents=True)
        for number in range(1, count + 1):
            shutil.copy(lfw_image(source, name, number), lfw_image(root, name, number))
    upright = cv2.imread(str(lfw_image(source, "Gerhard_Schroeder", 1)))
    assert upright is not None
    cv2.imwrite(str(lfw_image(root, "Gerhard_Schroeder", 2)), upright[::-1])
    (root / "images" / "Broken_Image").mkdir()
    lfw_image(root, "Broken_Image", 1).write_bytes(b"not a JPEG")
    (root / "people.txt").write_text(PEOPLE, encoding="utf-8")
    (root / "pairs.txt").write_text(PAIRS, encoding="utf-8")
    (root / "pairs.csv").write_text(FOLDS, encoding="utf-8")
    return root


# --------------------------------------------------------------------------------------------
# Readers


def test_read_lfw_reads_images_pairs_and_folds_and_reports_every_problem(
    small_lfw: Path,
) -> None:
    lfw = read_lfw(small_lfw)

    names = {image.name for image in lfw.images}
    assert names == {*REAL_IMAGES, "Broken_Image"}
    assert len(lfw.images) == 3 + 2 + 1 + 2 + 1
    assert ImageRef("Missing_Person", 1) not in lfw.images
    assert [(p.first, p.second, p.same, p.fold) for p in lfw.pairs[:2]] == [
        (ImageRef("Colin_Powell", 1), ImageRef("Colin_Powell", 2), True, 0),
        (ImageRef("Colin_Powell", 2), ImageRef("Colin_Powell", 3), True, 1),
    ]
    different = lfw.pairs[4]
    assert (different.first, different.second, different.same, different.fold) == (
        ImageRef("Colin_Powell", 1),
        ImageRef("Donald_Rumsfeld", 1),
        False,
        0,
    )
    assert len(lfw.pairs) == 8  # 10 lines, a comment and two bad ones
    unfolded = [p for p in lfw.pairs if p.fold is None]
    assert [(p.first.name, p.second.name) for p in unfolded] == [
        ("Donald_Rumsfeld", "Gerhard_Schroeder")
    ]
    problems = "\n".join(lfw.problems)
    assert "people.txt line 7" in problems
    assert "1 listed images are missing (e.g. images/Missing_Person/Missing_Person_0001.jpg)" in (
        problems
    )
    assert "pairs.txt line 10" in problems and "pairs.txt line 11" in problems
    assert "pairs.csv line 9" in problems
    assert "1 pairs of pairs.txt have no fold" in problems


def test_read_lfw_without_lists_reads_the_folder(small_lfw: Path, tmp_path: Path) -> None:
    shutil.copytree(small_lfw / "images", tmp_path / "images")

    lfw = read_lfw(tmp_path)

    assert len(lfw.images) == 9
    assert lfw.pairs == []
    problems = " ".join(lfw.problems)
    assert "people.txt is missing" in problems
    assert "pairs.txt is missing" in problems
    assert "pairs.csv is missing" in problems


def test_read_lfw_without_images_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LfwError, match="no LFW images folder"):
        read_lfw(tmp_path)


# --------------------------------------------------------------------------------------------
# Maths on synthetic scores and templates


def test_best_threshold_takes_the_middle_of_the_most_accurate_cuts() -> None:
    scores = np.array([0.5, 0.1, 0.3, 0.6, 0.2, 0.4])
    same = np.array([True, False, True, True, False, False])
    # Sorted: 0.1 d, 0.2 d, 0.3 s, 0.4 d, 0.5 s, 0.6 s. Cutting below 0.3 or below 0.5 gets
    # 5 of 6 right; every other cut fewer. The middle of those two is the cut below 0.5.
    assert best_threshold(scores, same) == pytest.approx(0.45)


def test_ten_fold_applies_the_other_folds_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.95, 0.6, 0.2, 0.1])
    same = np.array([True, True, False, False, True, True, False, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])

    rows = ten_fold(scores, same, folds)

    # Fold 1 alone separates at 0.4, which accepts fold 0's 0.7 impostor; fold 0 alone
    # separates at 0.75, which rejects fold 1's 0.6 genuine pair.
    assert [row["threshold"] for row in rows] == pytest.approx([0.4, 0.75])
    assert [row["accuracy"] for row in rows] == [0.75, 0.75]
    assert [row["pairs"] for row in rows] == [4, 4]
    assert [(row["false_matches"], row["false_non_matches"]) for row in rows] == [(1, 0), (0, 1)]
    assert [row["balanced_accuracy"] for row in rows] == [0.75, 0.75]


def test_operating_point_is_the_lowest_threshold_within_the_false_match_target() -> None:
    impostor = np.arange(1000) / 1000  # 0.000 ... 0.999
    genuine = np.array([0.5, 0.98, 0.995, 1.0])

    point = operating_point(genuine, impostor, target_fmr=0.01)

    # 10 impostors (0.990 ... 0.999) may match; accepting 0.989 as well would make 11.
    assert 0.989 < point["threshold"] <= 0.990
    assert point["false_matches"] == 10
    assert point["false_match_rate"] == 0.01
    assert point["false_non_matches"] == 2
    assert point["false_non_match_rate"] == 0.5


def unit(vector: list[float]) -> np.ndarray:
    array = np.array(vector + [0.0] * (8 - len(vector)))
    normalised: np.ndarray = array / np.linalg.norm(array)
    return normalised


#: Gallery entries A1 = e0, B1 = e1, C1 = e2 and D1 (0.85 along B1): C and D are single-image
#: distractors. A2 is near A1; A3 is nearer B1 (0.8) and D1 (0.68) than A1 (0.6), so its mate
#: ranks third; B2 is near B1 (0.995) and D1 (0.846).
SYNTHETIC = {
    ImageRef("A", 1): unit([1]),
    ImageRef("A", 2): unit([1, 0, 0, 0, 0.3]),
    ImageRef("A", 3): unit([0.6, 0.8]),
    ImageRef("B", 1): unit([0, 1]),
    ImageRef("B", 2): unit([0, 1, 0, 0, 0, 0.1]),
    ImageRef("C", 1): unit([0, 0, 1]),
    ImageRef("D", 1): unit([0, 0.85, 0, float(np.sqrt(1 - 0.85**2))]),
}


def synthetic_templates() -> Templates:
    return Templates(
        model="synthetic",
        detector="none",
        options={},
        images=list(SYNTHETIC),
        embeddings=np.stack(list(SYNTHETIC.values())),
        fell_back=np.zeros(len(SYNTHETIC), dtype=bool),
        unreadable=[],
        central_box=(0.25, 0.25, 0.75, 0.75),
    )


def test_pair_scores_split_every_pair_by_identity() -> None:
    templates = synthetic_templates()

    genuine, impostor = pair_scores(templates.embeddings, [i.name for i in templates.images])

    assert genuine.size == 3 + 1  # A: 3 pairs, B: 1
    assert impostor.size == 7 * 6 // 2 - 4
    assert sorted(genuine) == pytest.approx(sorted([0.958, 0.6, 0.6 * 0.958, 0.995]), abs=1e-3)
    assert impostor.max() == pytest.approx(0.85)  # B1 and D1


def test_identification_ranks_mates_and_counts_false_positives() -> None:
    result = identification(synthetic_templates(), threshold=0.82)

    assert (result["gallery"], result["distractors"], result["mated_probes"]) == (4, 2, 3)
    assert result["rank"]["1"] == pytest.approx(2 / 3)  # A3's mate ranks third
    assert result["rank"]["5"] == 1.0
    assert result["rank1_per_identity"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["identification_rate_at_threshold"] == pytest.approx(2 / 3)
    # D1's best other entry is B1 (0.85 >= 0.82), C1's is nothing.
    assert result["non_mated"]["distractor_probes"] == {
        "probes": 2,
        "false_positives": 1,
        "rate": 0.5,
    }
    # Without their mates: A2 has nothing near, A3 has B1 at 0.8, B2 has D1 at 0.846.
    assert result["non_mated"]["mate_removed_probes"]["false_positives"] == 1


def test_identification_at_a_threshold_above_every_mate_identifies_no_one() -> None:
    result = identification(synthetic_templates(), threshold=0.999)

    assert result["rank"]["1"] == pytest.approx(2 / 3)
    assert result["identification_rate_at_threshold"] == 0.0
    assert result["non_mated"]["distractor_probes"]["false_positives"] == 0


# --------------------------------------------------------------------------------------------
# Real templates, the card and the command


def dlib_options() -> dict[str, object]:
    return {"detector_upsample": FacesSettings().faces_detector_upsample}


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def small_templates(small_lfw: Path, cache_home: Path) -> Templates:
    """Embedded by two worker processes into the cache the command reads under VIGIL_HOME."""
    return embed_lfw(
        read_lfw(small_lfw),
        partial(configured_models, FacesSettings()),
        options=dlib_options(),
        workers=2,
        cache_dir=cache_home / "cache" / "faces",
    )


def test_templates_are_real_with_a_central_box_fallback(small_templates: Templates) -> None:
    templates = small_templates
    assert templates.model == "dlib-resnet-v1"
    assert len(templates.images) == 8
    assert len(templates.unreadable) == 1
    assert templates.unreadable[0].startswith("images/Broken_Image/Broken_Image_0001.jpg: ")
    fell_back = [
        image for image, fell in zip(templates.images, templates.fell_back, strict=True) if fell
    ]
    assert fell_back == [ImageRef("Gerhard_Schroeder", 2)]
    left, top, right, bottom = templates.central_box
    assert 0.1 < left < right < 0.9 and 0.1 < top < bottom < 0.9
    assert np.allclose(np.linalg.norm(templates.embeddings, axis=1), 1.0, atol=1e-5)
    row = {image: i for i, image in enumerate(templates.images)}
    similarity = templates.embeddings @ templates.embeddings.T
    powell, powell_2 = row[ImageRef("Colin_Powell", 1)], row[ImageRef("Colin_Powell", 2)]
    rumsfeld = row[ImageRef("Donald_Rumsfeld", 1)]
    assert similarity[powell, powell_2] > similarity[powell, rumsfeld] + 0.1


def test_templates_in_one_process_and_from_the_cache_equal_the_workers(
    small_lfw: Path, small_templates: Templates, cache_home: Path
) -> None:
    lfw = read_lfw(small_lfw)
    factory = partial(configured_models, FacesSettings())
    cache = cache_home / "cache" / "faces"
    advanced: list[int] = []

    # Other options key another cache entry: embedded again, in this process.
    inline = embed_lfw(lfw, factory, options={"other": 1}, workers=1, cache_dir=cache)
    cached = embed_lfw(
        lfw, factory, options=dlib_options(), cache_dir=cache, progress=advanced.append
    )

    assert len(list((cache / "dlib-resnet-v1").glob("*.npz"))) == 2
    assert inline.images == small_templates.images == cached.images
    assert np.allclose(inline.embeddings, small_templates.embeddings, atol=1e-6)
    assert np.array_equal(cached.embeddings, small_templates.embeddings)
    assert np.array_equal(cached.fell_back, small_templates.fell_back)
    assert cached.unreadable == small_templates.unreadable
    assert sum(advanced) == len(lfw.images)


def test_card_round_trips_through_the_engine(
    small_lfw: Path, small_templates: Templates, tmp_path: Path
) -> None:
    result = evaluate(
        read_lfw(small_lfw),
        small_templates,
        target_fmr=0.1,
        command="vigil faces eval --data small",
        data_label="small",
    )

    json_path, markdown_path = write_card(result, tmp_path)

    point = read_operating_point("dlib-resnet-v1", tmp_path)
    assert point is not None
    assert point.threshold == result["operating_point"]["threshold"]
    assert point.false_match_rate == result["operating_point"]["false_match_rate"] <= 0.1
    assert json.loads(json_path.read_text("utf-8"))["data"]["fell_back_to_central_box"] == 1
    card = markdown_path.read_text("utf-8")
    assert "Images with no face detected: **1**" in card
    assert "Broken_Image_0001.jpg" in card and "1 listed images are missing" in card
    # 7 pairs have both images; the pair with Missing_Person is dropped.
    assert result["verification"]["pairs"] == 7
    assert result["verification"]["dropped_pairs"] == 1
    assert [f["fold"] for f in result["verification"]["ten_fold"]["folds"]] == [0, 1]
    stricter = [at["threshold"] for at in result["trade_off"]]
    assert stricter == sorted(stricter)


def test_eval_command_writes_the_card_from_cached_templates(
    small_lfw: Path,
    small_templates: Templates,
    cache_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_HOME", str(cache_home))
    app = typer.Typer()
    app.command()(eval_command)
    out = tmp_path / "cards"

    caches = sorted((cache_home / "cache" / "faces").rglob("*.npz"))
    result = CliRunner().invoke(
        app, ["--data", str(small_lfw), "--out", str(out), "--target-fmr", "0.1", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert sorted((cache_home / "cache" / "faces").rglob("*.npz")) == caches
    printed = json.loads(result.stdout.splitlines()[-1])
    assert printed["command"] == f"vigil faces eval --data {small_lfw} --target-fmr 0.1"
    assert printed["data"]["embedded"] == len(small_templates.images)
    assert (out / "dlib-resnet-v1.md").is_file()
    point = read_operating_point("dlib-resnet-v1", out)
    assert point is not None and point.threshold == printed["operating_point"]["threshold"]


def test_eval_command_on_a_folder_without_images_fails_clearly(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(eval_command)

    result = CliRunner().invoke(app, ["--data", str(tmp_path), "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "no LFW images folder" in result.output

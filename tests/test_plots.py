"""The one figure writer and the generic figure scripts: a rule's named inputs and params reach the stage's figure
entry, and the same figure gives the same bytes."""

from __future__ import annotations

import hashlib
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Namedlist

from neurotext.plots import rule_arguments, save_figure, use_agg
from neurotext.relations import figure3

REPO = Path(__file__).resolve().parents[1]


def sse_files(root: Path) -> list[Path]:
    paths = []
    for layer in (1, 2):
        path = root / f"layer{layer}" / "sse.csv"
        path.parent.mkdir(parents=True)
        rows = [f"{k},{100.0 / (k + layer):.6f},{1.0 / (k + layer):.6f},3" for k in range(2, 7)]
        path.write_text("k,sse,sse_fraction,n_iter\n" + "\n".join(rows) + "\n")
        paths.append(path)
    return paths


def job(inputs: dict, params: dict, outputs: dict, log: Path) -> SimpleNamespace:
    return SimpleNamespace(input=Namedlist(fromdict=inputs), params=Namedlist(fromdict=params),
                           output=Namedlist(fromdict=outputs), log=[str(log)])  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rule_arguments_are_the_named_inputs_params_and_outputs(tmp_path):
    fake = job({"sse": ["a", "b"], "tsne": "t"}, {"figure": "figure3", "layers": [1, 2]},
               {"png": "f.png", "pdf": "f.pdf"}, tmp_path / "log")  # fmt: skip
    assert rule_arguments(fake) == {"sse": ["a", "b"], "tsne": "t", "layers": [1, 2], "png": "f.png", "pdf": "f.pdf"}


def test_the_relations_figure_script_calls_the_named_entry(tmp_path):
    paths = sse_files(tmp_path)
    direct = tmp_path / "direct"
    figure3(paths, [1, 2], direct / "fig3.png", direct / "fig3.pdf")
    via = tmp_path / "via"
    fake = job({"sse": [str(p) for p in paths]}, {"figure": "figure3", "layers": [1, 2]},
               {"png": str(via / "fig3.png"), "pdf": str(via / "fig3.pdf")}, tmp_path / "fig3.log")  # fmt: skip
    runpy.run_path(str(REPO / "workflow" / "scripts" / "relations_figure.py"), init_globals={"snakemake": fake})
    assert digest(via / "fig3.png") == digest(direct / "fig3.png")
    assert digest(via / "fig3.pdf") == digest(direct / "fig3.pdf")


def test_an_unknown_figure_entry_is_an_error(tmp_path):
    fake = job({}, {"figure": "figure9"}, {"png": "x.png", "pdf": "x.pdf"}, tmp_path / "log")
    with pytest.raises(AttributeError, match="figure9"):
        runpy.run_path(str(REPO / "workflow" / "scripts" / "relations_figure.py"), init_globals={"snakemake": fake})


def test_save_figure_writes_the_same_bytes_twice(tmp_path):
    use_agg()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    for tag in ("a", "b"):
        save_figure(fig, tmp_path / f"{tag}.png", tmp_path / f"{tag}.pdf")
    assert digest(tmp_path / "a.png") == digest(tmp_path / "b.png")
    assert digest(tmp_path / "a.pdf") == digest(tmp_path / "b.pdf")
    assert (tmp_path / "a.pdf").read_bytes()[:4] == b"%PDF" and b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()

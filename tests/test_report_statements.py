"""Every sentence of a report agrees with the data (issue 23).

Three real reports on 50 images of the CIFAR-10 JPEG copy (the sentences are checked, not
the numbers, so a few images suffice; each report measures two or three networks), built
from the committed H200
checkpoints: the FP ResNet-20 rewritten as a published-style plain state_dict
(``benchmarks/old_style_checkpoint.py``: ``module.`` keys, no ``num_batches_tracked``)
and measured with ImageNet statistics, and the committed TTQ ResNet-20 (which records the
CIFAR-10 train split's statistics):

* A, ``--baseline``: ``ttq.pt --baseline old.th --arch resnet20 --normalization imagenet``;
* B, what-if and a baseline also given as an input:
  ``old.th ttq.pt --baseline old.th --arch resnet20 --normalization imagenet``;
* C, as B with the FP input second: ``ttq.pt old.th --baseline old.th ...``.

Each statement of the HTML (names, repairs, normalisation, dataset, image counts, which
accuracy is which, what was trained) is checked against ``analysis.json`` and against
facts taken here from the input files themselves (the checkpoint's record read with
``torch.load``, torchvision's published ImageNet statistics, the file names).
"""

from __future__ import annotations

import contextlib
import html as htmlmod
import io
import json
import re
from pathlib import Path

import pytest
import torch

from conftest import CIFAR_ARCHIVE, needs_cifar

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "h200-2026-11-26"
TTQ_CKPT = RESULTS / "resnet20_ttq_best.pt"
FP_CKPT = RESULTS / "resnet20_fp_best.pt"
IMAGES = 50
TORCHVISION_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision docs
COMMON = ["--arch", "resnet20", "--normalization", "imagenet", "--data-dir", str(CIFAR_ARCHIVE),
          "--limit-test", str(IMAGES), "--what-if-bn-images", "64", "--no-progress",
          "--device", "cpu"]


def _report(tmp, name: str, *inputs: str) -> tuple[Path, str]:
    from reports.cli import main as report_main
    out = tmp / name
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal):
        assert report_main([*inputs, "--out", str(out), *COMMON]) == 0
    return out, terminal.getvalue()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    from benchmarks.old_style_checkpoint import convert
    tmp = tmp_path_factory.mktemp("statements")
    th = tmp / "resnet20-old.th"
    convert(str(FP_CKPT), str(th))
    a = _report(tmp, "A", str(TTQ_CKPT), "--baseline", str(th))
    b = _report(tmp, "B", str(th), str(TTQ_CKPT), "--baseline", str(th))
    c = _report(tmp, "C", str(TTQ_CKPT), str(th), "--baseline", str(th))  # FP input second
    return {"th": th, "A": a, "B": b, "C": c}


# ----------------------------------------------------------------------------- reading a report

def _text(fragment: str) -> str:
    """Visible text of an HTML fragment: tags dropped, entities decoded, spaces collapsed."""
    fragment = re.sub(r"<svg.*?</svg>", " ", fragment, flags=re.S)
    fragment = re.sub(r"<wbr>", "", fragment)
    return re.sub(r"\s+", " ", htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start:page.index("</section>", start)]


def _network_sections(page: str) -> dict[str, str]:
    """{network heading: section HTML} of the per-network sections."""
    out = {}
    for sid in re.findall(r'<section id="(net-\d+)">', page):
        sec = _section(page, sid)
        out[_text(re.search(r"<h2>(.*?)</h2>", sec, re.S).group(1))] = sec
    return out


def _items(fragment: str) -> list[str]:
    return [_text(li) for li in re.findall(r"<li>(.*?)</li>", fragment, re.S)]


def _provenance(sec: str) -> tuple[list[str], list[str]]:
    """(the network's own "where the numbers come from" lines, its baseline's lines)."""
    own = re.search(r'<div class="meta provenance">(.*?)</div>', sec, re.S)
    base = re.search(r'<div class="meta provenance baseline-provenance">(.*?)</div>', sec, re.S)
    return (_items(own.group(1)) if own else [], _items(base.group(1)) if base else [])


def _table3_rows(page: str) -> list[tuple[str, str]]:
    """(network, precision) of every row of Table 3's first part."""
    sec = _section(page, "table3")
    first = sec[sec.index('id="table3_energy"'):]
    first = first[:first.index("</table>")]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", first, re.S):
        cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if cells:
            rows.append((cells[0], cells[1]))
    return rows


def _norm_sentence(lines: list[str]) -> str:
    found = [ln for ln in lines if ln.startswith("Inputs normalised with")]
    assert len(found) == 1, lines
    return found[0]


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _json(out: Path) -> list[dict]:
    return json.loads((out / "analysis.json").read_text())["networks"]


# ----------------------------------------------------------------------------- A: --baseline

@needs_cifar
def test_baseline_report_names_the_baseline_and_says_where_its_numbers_come_from(reports):
    out, _ = reports["A"]
    th = reports["th"]
    page = (out / "report.html").read_text()
    (net,) = _json(out)
    base = net["baseline"]["meta"]
    assert base["checkpoint"]["source"] == str(th)
    # the baseline row of Table 3 carries the baseline's own name, not the ternary one's
    rows = _table3_rows(page)
    assert [p for _, p in rows] == ["FP32", "TTQ"]
    assert rows[0][0] == "resnet20-old (resnet20, FP)" and rows[1][0] == net["label"]
    assert th.stem in rows[0][0] and "TTQ" not in rows[0][0]
    # its section names the file, every repair made while loading it, its normalisation
    sec = _network_sections(page)[net["label"]]
    own, baseline_lines = _provenance(sec)
    assert th.name in _text(sec)
    notes = base["checkpoint"]["load_notes"]
    assert notes and any("num_batches_tracked" in n for n in notes)
    for note in notes:
        assert note in baseline_lines
    sentence = _norm_sentence(baseline_lines)
    mean, std = TORCHVISION_IMAGENET
    assert f"mean {_numbers(mean)} and std {_numbers(std)}" in sentence
    assert tuple(base["input_normalization"]["mean"]) == mean
    assert "--normalization imagenet" in sentence


@needs_cifar
def test_normalisation_sentences_match_what_was_measured(reports):
    out, _ = reports["A"]
    page = (out / "report.html").read_text()
    (net,) = _json(out)
    recorded = torch.load(TTQ_CKPT, weights_only=True)["normalization"]
    used = net["analysis"]["meta"]["input_normalization"]
    assert used["mean"] == pytest.approx(recorded["mean"]) and used["std"] == pytest.approx(recorded["std"])
    own, _ = _provenance(_network_sections(page)[net["label"]])
    sentence = _norm_sentence(own)
    assert f"mean {_numbers(recorded['mean'])} and std {_numbers(recorded['std'])}" in sentence
    # the TTQ checkpoint records other statistics than ImageNet's: the flag was not applied
    # to it, and the sentence says so without denying that the baseline used it
    assert recorded["mean"] != pytest.approx(list(TORCHVISION_IMAGENET[0]))
    assert "recorded in the checkpoint" in sentence and "was not applied to it" in sentence
    assert "ignored" not in _text(page)


@needs_cifar
def test_captions_name_the_measured_split_and_image_count(reports):
    for key in ("A", "B"):
        out, _ = reports[key]
        page = (out / "report.html").read_text()
        nets = _json(out)
        counts = {n["analysis"]["meta"]["images"] for n in nets}
        counts |= {n["baseline"]["meta"]["images"] for n in nets if n["baseline"]}
        assert counts == {IMAGES}
        assert {n["analysis"]["meta"]["measurement_data"]["split"] for n in nets} == {
            "CIFAR-10 test split"}
        text = _text(page)
        assert "unrecorded dataset" not in text
        phrase = f"{IMAGES} images of the CIFAR-10 test split (fixed class-balanced subset)"
        caption = _text(re.search(r"<caption>(.*?)</caption>", _section(page, "table3"),
                                  re.S).group(1))
        assert f"Activations measured on {phrase} for every model" in caption
        for label, sec in _network_sections(page).items():
            layer_caption = _text(re.search(r"<caption>(.*?)</caption>", sec, re.S).group(1))
            assert f"activations measured over {phrase}" in layer_caption, label
            # the figures name the same images (not the dataset a checkpoint trained on)
            figures = [_text(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", sec, re.S)]
            sparsity = [c for c in figures if "Distribution over" in c]
            assert len(sparsity) == 1, label
            assert f"Distribution over {IMAGES} images of the CIFAR-10 test split" in sparsity[0]
            assert not any(f"{IMAGES} cifar10 images" in c for c in figures), label


@needs_cifar
def test_kept_fp_layers_of_a_toolkit_ttq_checkpoint_are_named_as_by_design(reports):
    out, _ = reports["A"]
    page = (out / "report.html").read_text()
    (net,) = _json(out)
    fp_layers = torch.load(TTQ_CKPT, weights_only=True)["quant"]["fp_layers"]
    plain = [n for n, d in net["analysis"]["meta"]["ternary_detection"]["layers"].items()
             if not d["ternary"]]
    assert sorted(plain) == sorted(fp_layers) == ["conv1", "linear"]
    own, _ = _provenance(_network_sections(page)[net["label"]])
    assert any(ln.startswith("Full-precision layers: conv1 and linear are kept in full "
                             "precision by design") for ln in own), own
    assert not any("Ternary detection: none" in ln for ln in own)


@needs_cifar
def test_summary_card_says_which_accuracy_is_which(reports):
    out, _ = reports["A"]
    page = (out / "report.html").read_text()
    (net,) = _json(out)
    acc = net["analysis"]["network"]["test_acc"]
    fp_acc = net["baseline"]["network"]["test_acc"]
    assert acc == torch.load(TTQ_CKPT, weights_only=True)["metrics"]["test_acc"]
    card = _text(re.search(r'<div class="card">(.*?)</div></div>', _section(page, "summary"),
                           re.S).group(1))
    assert card == (f"test accuracy of this network, recorded in the checkpoint "
                    f"{100 * acc:.2f} % FP baseline resnet20-old (resnet20, FP): "
                    f"{100 * fp_acc:.2f} % , measured here on {IMAGES} images")


# ----------------------------------------------------------------------------- B: what-if

@needs_cifar
def test_what_if_report_says_nothing_was_trained(reports):
    out, terminal = reports["B"]
    page = (out / "report.html").read_text()
    nets = _json(out)
    labels = [n["label"] for n in nets]
    what_if = [n for n in nets if n["analysis"]["meta"].get("what_if")]
    assert len(what_if) == 1
    w = what_if[0]
    assert w["analysis"]["meta"]["what_if"]["weights_trained"] is False
    label = w["label"]
    assert label == "resnet20-old (resnet20, FP): what if ternarized at t=0.05, not trained"
    sec = _network_sections(page)[label]
    title = _text(re.search(r"<caption><strong>(.*?)</strong>", sec, re.S).group(1))
    assert title.startswith(f"Per-layer analysis: {label}, part 1 of 2")
    assert title.count("(") == title.count(")")      # not "(Wn, not trained))"
    caption = _text(re.search(r"<caption>(.*?)</caption>", sec, re.S).group(1))
    assert "wp, wn: least-squares ternary scales of the FP weights, not trained" in caption
    assert "trained ternary scales" not in caption
    own, _ = _provenance(sec)
    assert any(ln.startswith("Full-precision layers: conv1 and linear are kept in full "
                             "precision by the what-if estimate") for ln in own), own
    # the terminal names the what-if row as in the report: not trained
    rows = [ln for ln in terminal.splitlines() if ln.startswith(label)]
    assert len(rows) == 1 and " TTQ " in rows[0]
    assert labels.count(label) == 1


@needs_cifar
def test_fp_row_appears_once_when_the_baseline_is_also_an_input(reports):
    out, terminal = reports["B"]
    page = (out / "report.html").read_text()
    nets = _json(out)
    th_label = "resnet20-old (resnet20, FP)"
    rows = _table3_rows(page)
    assert [r for r in rows if r[1] == "FP32"] == [(th_label, "FP32")]
    assert len(rows) == 3          # the FP network, its what-if, the TTQ checkpoint
    csv_rows = (out / "table3_energy.csv").read_text().splitlines()[1:]
    assert sum(",FP32," in r for r in csv_rows) == 1
    # both ternary rows are compared with that one FP network (the same measured numbers)
    fp_json = next(n for n in nets if n["label"] == th_label)["analysis"]["network"]
    for n in nets:
        if n["baseline"] is not None:
            assert n["baseline"]["network"] == fp_json
    assert sum(ln.startswith(th_label + " ") and " FP32 " in ln
               for ln in terminal.splitlines()) == 1


@needs_cifar
def test_baseline_given_after_the_ternary_input_keeps_one_name(reports):
    out, _ = reports["C"]
    page = (out / "report.html").read_text()
    th_label = "resnet20-old (resnet20, FP)"
    rows = _table3_rows(page)
    assert rows[:2] == [(th_label, "FP32"), (_json(out)[0]["label"], "TTQ")]
    assert [r for r in rows if r[1] == "FP32"] == [(th_label, "FP32")]
    summary = _text(_section(page, "summary"))
    assert f"FP baseline {th_label}:" in summary and "#2" not in summary

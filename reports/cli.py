"""``ttq-report``: analyse checkpoints on real data and render the HTML report with tables
and figures (see ``ttq-report --help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ttq_core import distributed
from ttq_core.errors import ConfigError, TTQError, describe_os_error

from .byon_options import (BYON_EPILOG, add_byon_options, check_byon_options, load_input,
                           what_if_input)

EPILOG = """\
examples:
  # one ternary checkpoint, measured on the whole CIFAR-10 test split
  ttq-report runs/r20-ttq/best.pt --dataset cifar10 --data-dir ../shared/data

  # pair it with its real FP checkpoint (accuracy and activations of the FP model)
  ttq-report runs/r20-ttq/best.pt --baseline runs/r20-fp/best.pt --out reports/r20

  # several networks in one Table 3; DRAM weights; a quick look on 1,000 images
  ttq-report r20.pt r32.pt r44.pt --memory dram --limit-test 1000

  # would the saving survive real hardware? int8 activations read and written in SRAM,
  # and the scenario matrix over two process nodes (45 nm and 7 nm cost models)
  ttq-report r20.pt --activations int8 --act-memory sram --energy-model horowitz45,jouppi7

  # a published plain FP state_dict (akamaster's CIFAR ResNets were trained on
  # ImageNet-normalised inputs): its energy plus a "what if ternarized" estimate
  ttq-report resnet20.th --arch resnet20 --normalization imagenet

  # an ImageNet network, measured on 5,000 images of the val/ split
  ttq-report runs/r18-ttq/best.pt --dataset imagenet --data-dir /data/imagenet --limit-test 5000

energy model (the README's "Energy model" section has every assumption): a MAC is a
multiplication at the --activations precision plus an accumulation (fp32, fp16 or int32);
a ternary layer adds and subtracts, then scales by Wp/Wn (a binary one by one alpha_c per
output); an int4/int8 layer does MACs at the weight x activation precision (int4 x int8:
a DERIVED energy, int8 mult x (4*8)/(8*8)); weights are read once per inference from
--memory, at each layer's bits per weight; --act-memory also counts each layer's input reads and output
writes (dense, or a zero bitmap + nonzero values when zero inputs are skipped).  Every
quantized network also gets a scenario matrix: its saving under every combination of the
--energy-model list x {fp32,fp16,int8} x weights {sram,dram} x activations {none,sram,
dram} x {dense,measured}, with the assumption that moves it most named.

outputs in --out (default reports/<checkpoint-stem>/): report.html (self-contained: open
it offline or print it), table3_energy.{csv,tex,md}, layers_<network>.{csv,tex,md},
cost_model*.{csv,tex,md}, scenario_matrix_<network>.{csv,tex,md},
<network>_<figure>.{svg,png}, analysis.json (every number).
The report is built aside and moved into place when complete. --out must be missing,
empty, or an earlier report (it carries a .ttq-report.json marker listing its files):
a run folder, ".", a symbolic link, a report without the marker or any folder with
other files is refused and left untouched; --json must lie outside --out.
"""


def build_parser() -> argparse.ArgumentParser:
    from ttq_core.datasets import DATASETS
    from ttq_analysis.cli_options import add_energy_options
    from ttq_core.cli_options import add_data_dir, add_device, add_progress
    p = argparse.ArgumentParser(
        prog="ttq-report", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure checkpoints (dense MACs, ternary/binary operations, weight and measured "
                    "activation sparsity, energy under a stated cost model) and write an HTML "
                    "report with Table-3-style FP32 vs quantized energy tables and the training "
                    "history (sparsity evolution, Wp/Wn, gradient statistics).",
        epilog=EPILOG + BYON_EPILOG)
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="toolkit checkpoints (FP, or quantized by any method: ttq, twn, bwn, "
                        "int4, int8) or plain state_dicts (with --arch)")
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS),
                   help="data to measure activations on: the CIFAR-10 test split, or the val/ "
                        "split of an ILSVRC-2012 folder tree given by --data-dir "
                        "(default %(default)s)")
    p.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="ImageNet: center-crop side (default: the model's input size, 224)")
    p.add_argument("--workers", type=int, default=4, metavar="N",
                   help="ImageNet: DataLoader worker processes decoding JPEGs (default %(default)s)")
    add_data_dir(p)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder: missing, empty or an earlier report, never a folder "
                        "with other files (default reports/<first checkpoint stem>)")
    add_energy_options(p, several_models=True)
    p.add_argument("--batches", type=int, default=None, metavar="N",
                   help="measure on at most N batches of 256 test images")
    p.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="measure on a fixed class-balanced subset of N test images")
    p.add_argument("--baseline", default=None, metavar="FP_CKPT",
                   help="the real FP checkpoint of the (first) quantized network")
    p.add_argument("--arch", default=None, help="architecture of plain state_dict inputs")
    add_byon_options(p)
    p.add_argument("--what-if-threshold", type=float, default=0.05, metavar="T",
                   help="for FP inputs: also estimate the network ternarized at this t "
                        "(untrained; default %(default)s)")
    add_device(p)
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the analysis results (JSON) to FILE")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="report a checkpoint with NaN/Inf weights or a non-positive "
                        "normalisation std anyway, under a red warning (default: refuse it)")
    add_progress(p)
    return p


def _label(path: str, loaded, detected_ternary: bool | str = False, base: str | None = None) -> str:
    """``base (arch, kind)``; ``base``: the input's name, distinct among the report's inputs
    (:func:`reports.labels.distinct_names`), by default its own.  ``kind``: the toolkit
    method of a quantized checkpoint (TTQ, TWN, BWN, INT4, INT8), ``"<format>, detected"``
    for weights recognised in a plain file (``detected_ternary``: True for ternary, or the
    format's name), else FP."""
    from .labels import METHOD_NAMES, distinct_names
    base = base or distinct_names([path])[0]
    if loaded.is_ternary:
        method = str((loaded.checkpoint or {}).get("quant", {}).get("method") or "ttq")
        kind = METHOD_NAMES.get(method, method.upper())
    elif detected_ternary:
        fmt = "ternary" if detected_ternary is True else str(detected_ternary)
        kind = f"{fmt}, detected"
    else:
        kind = "FP"
    return f"{base} ({loaded.arch}, {kind})"


def _same_file(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or Path(a).samefile(b)
    except OSError:
        return False


def _measurement_data(args, device):
    """The report's images, from the dataset registry (``ttq_core.datasets``)."""
    from ttq_core.datasets import dataset_spec
    return dataset_spec(args.dataset).measurement(
        args.data_dir, limit=args.limit_test, device=device, workers=args.workers,
        image_size=args.image_size, progress=not args.no_progress)


def _sanity_warnings(checked, allow: bool) -> dict[str, str]:
    """Refuse checkpoints whose numbers cannot mean anything (NaN weights, std <= 0), or
    with ``allow``, return the warning each one's report section shows."""
    from ttq_core.checkpoint import sanity_problems
    from ttq_core.errors import CheckpointError
    warnings = {}
    for path, ld in checked:
        problems = sanity_problems(ld)
        if not problems:
            continue
        if not allow:
            raise CheckpointError(f"{path}: {'; '.join(problems)}: its accuracy, sparsity and "
                                  f"energy figures would be meaningless; fix the checkpoint, "
                                  f"or pass --allow-nonfinite to report it under a warning")
        warnings[path] = (f"This checkpoint is broken: {'; '.join(problems)}. Its accuracy, "
                          f"activation sparsity and energy figures below are not meaningful "
                          f"(reported because --allow-nonfinite was given).")
    return warnings


def _stale_bn_warnings(checked) -> dict[str, str]:
    """For each toolkit TTQ checkpoint whose batch-norm statistics come from the old
    unaugmented re-estimation (toolkit 0.1), the warning its report section shows (also
    printed once on stderr): it is reported as it is, and how to refresh it."""
    from ttq_core.train.refresh_bn import needs_refresh
    out = {}
    for path, ld in checked:
        if ld.checkpoint is None or not needs_refresh(ld.checkpoint):
            continue
        new = Path(path).with_name(Path(path).stem + "-bn-refreshed.pt")
        out[path] = (f"{path} holds batch-norm statistics re-estimated on unaugmented "
                     f"training images (toolkit 0.1), while its weights learned under "
                     f"augmented batches: its accuracy is reported as stored and is likely "
                     f"2-3 points under what its weights give. Refresh the statistics into a "
                     f"new file (the old one is kept) with: ttq-refresh-bn {path} {new} "
                     f"--data-dir <data>")
        print(f"ttq-report: warning: {out[path]}", file=sys.stderr)
    return out


def run(args: argparse.Namespace) -> Path:
    """Check every input cheaply, measure each checkpoint (and the baseline, and a what-if
    for FP inputs) on the report's images, render the report (rank 0 under torchrun)."""
    from ttq_analysis import load_energy_model
    from ttq_core.devices import resolve_device

    from .render import jpeg_note, render_report
    from .tables import summary_text

    # Everything that can fail cheaply fails before any data or model work.
    from ttq_analysis.cli_options import energy_model_names
    from ttq_analysis.energy import check_energy_options
    models = [load_energy_model(m) for m in energy_model_names(args.energy_model)]
    for m in models:
        check_energy_options(m, args.memory, args.activations, args.act_memory)
    energy = models[0]
    loaded, baseline, warnings, out = _check_inputs(args)
    device = resolve_device(args.device)  # under torchrun: cuda -> cuda:LOCAL_RANK
    data = _measurement_data(args, device)
    inputs = _measure_all(args, loaded, baseline, warnings, data, energy, device)
    n_images = data.images if args.batches is None else min(data.images, args.batches * 256)
    description = (f"{n_images:,} images of the {data.split_name} from {data.source}"
                   + (" (fixed class-balanced subset)" if args.limit_test else ""))
    note = jpeg_note(data.source) if args.dataset == "cifar10" else None
    if not distributed.is_main():  # under torchrun every rank measured its share; rank 0 renders
        return out
    html = render_report(inputs, out, data_description=description, jpeg_note=note,
                         title=args.title, json_copy=args.json, energy_models=models)
    print(summary_text([(i.label, i.analysis) for i in inputs],
                       {i.label: i.baseline for i in inputs if i.baseline is not None} or None,
                       baseline_labels={i.label: i.baseline_label for i in inputs
                                        if i.baseline_label}))
    print(f"report: {html}")
    return html


def _check_inputs(args):
    """Load and check the checkpoints, the baseline, the output folder and --json before
    any measuring: (loaded checkpoints, baseline or None, sanity warnings, out folder)."""
    from .output_folder import check_destination
    for name in ("batches", "limit_test", "image_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    check_byon_options(args)
    loaded = [load_input(p, args) for p in args.checkpoints]
    baseline = load_input(args.baseline, args) if args.baseline else None
    if baseline is not None and baseline.is_ternary:  # any quantizer method
        method = str((baseline.checkpoint or {}).get("quant", {}).get("method") or "ttq")
        kind = "ternary" if method == "ttq" else f"quantized ({method})"
        raise ConfigError(f"--baseline {args.baseline} is a {kind} checkpoint; give the FP one")
    warnings = _sanity_warnings(list(zip(args.checkpoints, loaded)) +
                                ([(args.baseline, baseline)] if baseline else []),
                                args.allow_nonfinite)
    stale = _stale_bn_warnings(list(zip(args.checkpoints, loaded)))
    for path, text in stale.items():
        warnings[path] = f"{warnings[path]} {text}" if path in warnings else text
    out = Path(args.out) if args.out else Path("reports") / Path(args.checkpoints[0]).stem
    if distributed.is_main():  # refuse a folder it may not write before measuring anything
        check_destination(out)
        if args.json is not None:  # never an input, never inside --out, never a user's file
            from ttq_core.output_file import check_output_file
            check_output_file(args.json, "--json", "ttq-report", replaced_folder=out,
                              inputs=[*args.checkpoints, args.baseline])
    return loaded, baseline, warnings, out


def _measure_all(args, loaded, baseline, warnings, data, energy, device) -> list:
    """One :class:`ReportInput` per checkpoint (the first ternary one paired with the
    baseline), plus an untrained what-if-ternarized input after each FP checkpoint."""
    from ttq_analysis import analyze
    from ttq_analysis.analysis import checkpoint_info
    from ttq_core.models import list_models

    from .render import ReportInput

    request = getattr(args, "normalization_request", None)
    measured_on = {"split": data.split_name, "source": data.source,
                   "subset": "fixed class-balanced subset" if args.limit_test else None}

    def measure(model, ld=None, path=None, norm=None):
        norm = norm or data.normalization_for(ld, request)
        arch = ld.arch if ld is not None else getattr(model, "arch_name", None)
        shape = data.input_shape or (None if arch in list_models() else data.sample_shape)
        a = analyze(model, data=data.batches_for(norm), energy_model=energy,
                    batches=args.batches, device=device, memory=args.memory,
                    precision=args.activations, act_memory=args.act_memory,
                    progress=not args.no_progress, input_shape=shape, arch=arch,
                    ternary_tolerance=args.ternary_tolerance)
        a.meta["input_normalization"] = norm.as_meta()
        a.meta["measurement_data"] = measured_on  # what the report's sentences name
        recorded = None
        if ld is not None:  # keep what the checkpoint says about itself
            a.meta["checkpoint"] = checkpoint_info(ld, path)
            recorded = ((ld.checkpoint or {}).get("metrics") or {}).get("test_acc")
        # accuracy: as recorded by training, else as measured here on the report's images
        net = a.network
        a.network = net.with_accuracy(
            recorded if recorded is not None else net.accuracy.measured_acc,
            "recorded in the checkpoint" if recorded is not None
            else f"measured here on {net.images:,} images")
        return a

    base_analysis = measure(baseline.model, baseline, args.baseline) if baseline else None
    from .labels import distinct_names
    inputs = []
    names = distinct_names(args.checkpoints)  # a/ttq.pt and b/ttq.pt: never one name
    base_label, paired_already = None, False
    if baseline is not None:  # its own name (an input's, when it is one), not the ternary one's
        same_as = [i for i, p in enumerate(args.checkpoints) if _same_file(p, args.baseline)]
        base_label = (_label(args.checkpoints[same_as[0]], baseline, False, names[same_as[0]])
                      if same_as else _label(args.baseline, baseline, False, distinct_names(
                          [*args.checkpoints, args.baseline])[-1]))
    for path, ld, name in zip(args.checkpoints, loaded, names):
        # the baseline given as an input too is measured once: one FP row in Table 3
        same = baseline is not None and _same_file(path, args.baseline)
        a = base_analysis if same else measure(ld.model, ld, path)
        # quantized weights from elsewhere: ternary (as before), binary, int4, int8, mixed
        detected = (not ld.is_ternary and a.network.quantized
                    and (True if a.network.weight_format == "ternary" else
                         "quantized" if a.network.weight_format == "mixed" else
                         a.network.weight_format))
        label = _label(path, ld, detected, name)
        warning = warnings.get(path)
        if ld.is_ternary or detected:
            paired = None if paired_already else base_analysis  # the first ternary input
            paired_already = True
            inputs.append(ReportInput(label, a, paired, warning=warning,
                                      baseline_label=base_label if paired is not None else None))
            continue
        inputs.append(ReportInput(label, a, warning=warning))
        inputs.append(what_if_input(args, ld, path, label, a, data, device, measure))
    return inputs


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # under torchrun (several processes) analyze() splits the images over the ranks
        with distributed.session(args.device):
            run(args)
    except TTQError as e:
        print(f"ttq-report: error: {distributed.rank_prefix()}{e}", file=sys.stderr)
        return 1
    except OSError as e:  # permission, not a folder, disk full, ...: one line naming the path
        print(f"ttq-report: error: {distributed.rank_prefix()}{describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ttq-report: interrupted; no report was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``ttq-sweep``: fine-tune one FP network into TTQ under several settings (single t values,
fixed sparsities, energy-aware or uniform per-layer plans, the latent-gradient scaling
ablation), analyse every result on real data, and render one comparison report.

A *setting* is written ``KIND=VALUE[,OPTION...]``:

==========================  ===========================================================
``t=0.05``                  threshold rule, Δ = t·max|w| in every ternary layer
``sparsity=0.5``            a fixed fraction of zero weights in every ternary layer
``energy=0.6``              energy-aware per-layer sparsity (``ttq-plan``) for a budget
                            of 0.6 × the t=0.05 network's dense energy (or ``25uJ``)
``uniform=0.6``             one sparsity for all layers meeting the same kind of budget
``method=twn``              another weight quantizer (``fp``, ``ttq``, ``twn``, ``bwn``,
                            ``int4``, ``int8``; ``ttq-train --quantizer``), the method
                            axis: TTQ against the methods a reviewer would name
options                     ``ste`` (plain straight-through gradients: no Wp/1/Wn
                            scaling), ``scale-lr-mult=M``, ``scale-init=one|least-squares``, ``lr=X``,
                            ``seed=N`` (replicates: twins under several seeds are
                            summarised together), ``label=NAME``
==========================  ===========================================================

Everything lands in ``--out``: ``plans/<setting>.json``, ``runs/<setting>/`` (the
``ttq-train`` outputs), ``report/`` (the comparison report).  Rerunning the same command
skips finished runs, resumes interrupted ones and re-renders the report; a run folder
holding a different setting is an error, never overwritten.

Size: a little over 450 lines, of which the setting grammar and its help text are a
third; running (plan and train, analyse, render) is split into one function per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ttq_core.errors import ConfigError, TTQError, describe_os_error

KINDS = {"t": "threshold", "sparsity": "sparsity", "energy": "energy-aware",
         "uniform": "uniform", "method": "method"}
FP_METHOD = "fp"  # ``method=fp``: the FP network fine-tuned for the same budget (no quantizer)


def method_names() -> list[str]:
    """What ``method=NAME`` accepts: ``fp`` and every registered quantizer
    (:data:`ttq_core.quantize.family.QUANTIZERS`)."""
    from ttq_core.quantize.family import QUANTIZERS
    return [FP_METHOD, *QUANTIZERS]


def method_summary(name: str) -> str:
    """One line naming method ``name`` and its paper, for the report's descriptions."""
    if name == FP_METHOD:
        return "full precision (32-bit float weights), fine-tuned for the same budget"
    from ttq_core.quantize.family import QUANTIZERS
    spec = QUANTIZERS[name]
    return f"{spec.description} ({spec.paper})"
# TrainConfig fields a setting may override, and their parsers
def _scale_init(text: str) -> str:
    from ttq_core.quantize.layers import SCALE_INITS
    if text not in SCALE_INITS:
        raise ValueError(text)
    return text


OPTIONS = {"scale-lr-mult": ("scale_lr_mult", float), "lr": ("lr", float),
           "scale-init": ("scale_init", _scale_init), "seed": ("seed", int)}
# fields that must agree between a requested setting and an existing run folder
IDENTITY_FIELDS = ("arch", "mode", "quantizer", "init", "threshold", "layer_thresholds", "target_sparsity",
                   "layer_sparsity", "keep_fp", "grad_scaling", "scale_lr_mult", "lr",
                   "scale_init", "wd_scales",
                   "batch_size", "weight_decay", "schedule", "limit_train", "limit_test", "seed")


@dataclass
class Setting:
    """One point of a sweep: the threshold choice and the training overrides."""

    kind: str                 # a key of KINDS
    value: str                # as written (a number, or a budget such as "25uJ")
    grad_scaling: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        if not self.label:
            self.label = self.default_label()

    def default_label(self) -> str:
        base = {"t": f"t={self.value}", "sparsity": f"sparsity {self.value}",
                "energy": f"energy-aware {self.value}", "uniform": f"uniform {self.value}",
                "method": str(self.value)}[self.kind]
        extra = [f"{k.replace('_', '-')}={v:g}" if isinstance(v, float) else
                 f"{k.replace('_', '-')}={v}" for k, v in sorted(self.overrides.items())]
        if not self.grad_scaling:
            extra.append("plain STE")
        return base + (f" ({', '.join(extra)})" if extra else "")

    @property
    def slug(self) -> str:
        from .render import slugify
        return slugify(self.label)

    @property
    def key(self) -> str:
        """Everything but grad scaling: ablation twins share it."""
        return f"{self.kind}={self.value};{sorted(self.overrides.items())}"

    @property
    def replicate_key(self) -> str:
        """Everything but grad scaling and the seed: the same setting under other seeds."""
        rest = {k: v for k, v in self.overrides.items() if k != "seed"}
        return f"{self.kind}={self.value};{sorted(rest.items())}"

    def rule(self) -> str:
        if self.kind == "method":
            return _method_rule(self.value)
        return {"t": f"threshold t={self.value}", "sparsity": f"sparsity {self.value}",
                "energy": "sparsity, energy-aware plan", "uniform": "sparsity, uniform plan"}[self.kind]

    def description(self) -> str:
        return {"t": f"threshold rule, Δ = {self.value}·max|w| in every ternary layer",
                "sparsity": f"sparsity rule, {self.value} of the weights zero in every ternary layer",
                "energy": f"energy-aware per-layer sparsity for the energy budget {self.value}",
                "uniform": f"one sparsity for every layer meeting the energy budget {self.value}",
                "method": f"method {self.value}: {method_summary(self.value)}"
                if self.kind == "method" else "",
                }[self.kind] + ("" if self.grad_scaling else "; plain straight-through gradients")


def _method_rule(name: str) -> str:
    """A few words on how method ``name`` sets its weights (the table's rule column)."""
    if name == FP_METHOD:
        return "full precision"
    if name == "ttq":
        return "TTQ, Δ = 0.05·max|w|, Wp/Wn learned"
    from ttq_core.quantize.family import QUANTIZERS
    spec = QUANTIZERS[name]
    return f"{name.upper()}, {spec.family} {spec.bits}-bit, one scale per {spec.granularity}"


TTQ_ONLY_OPTIONS = ("ste", "scale-init", "scale-lr-mult")


def parse_setting(text: str) -> Setting:
    """``KIND=VALUE[,OPTION...]`` (see the module doc) -> :class:`Setting`."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or "=" not in parts[0]:
        raise ConfigError(f"--setting {text!r}: expected KIND=VALUE (KIND one of "
                          f"{', '.join(KINDS)}), e.g. t=0.05 or energy=0.6,ste")
    kind, _, value = parts[0].partition("=")
    kind = kind.strip()
    if kind not in KINDS:
        raise ConfigError(f"--setting {text!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    value = value.strip()
    if kind == "method":
        if value not in method_names():
            raise ConfigError(f"--setting {text!r}: unknown method {value!r}; known: "
                              f"{', '.join(method_names())}")
    elif kind in ("t", "sparsity"):
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"--setting {text!r}: {value!r} is not a number") from None
        if not 0 <= v < 1 or (kind == "t" and v == 0):
            raise ConfigError(f"--setting {text!r}: {kind} must be in "
                              f"{'(0, 1)' if kind == 't' else '[0, 1)'}")
    else:
        from ttq_analysis.threshold_plan import EnergyBudget
        try:
            EnergyBudget.parse(value)
        except ConfigError as e:
            raise ConfigError(f"--setting {text!r}: {e}") from None
    setting = Setting(kind, value)
    label = None
    for opt in parts[1:]:
        name, sep, v = opt.partition("=")
        name = name.strip()
        if name == "ste" and not sep:
            setting.grad_scaling = False
        elif name == "label" and sep and v.strip():
            label = v.strip()
        elif name in OPTIONS and sep:
            field_name, parse = OPTIONS[name]
            try:
                setting.overrides[field_name] = parse(v)
            except ValueError:
                raise ConfigError(f"--setting {text!r}: {name}={v!r} is not a valid value "
                                  f"(a number; seed: an integer; scale-init: one or "
                                  f"least-squares)") from None
        else:
            raise ConfigError(f"--setting {text!r}: unknown option {opt!r}; options: ste, "
                              f"label=NAME, {', '.join(f'{o}=X' for o in OPTIONS)}")
    if kind == "method" and value != "ttq":
        used = [o.partition("=")[0].strip() for o in parts[1:]]
        bad = [o for o in TTQ_ONLY_OPTIONS if o in used]
        if bad:
            raise ConfigError(f"--setting {text!r}: {', '.join(bad)} only apply to TTQ "
                              f"(method=ttq or a t=/sparsity=/energy=/uniform= setting)")
    setting.label = label or setting.default_label()
    return setting


# ----------------------------------------------------------------------------- CLI

EPILOG = """\
examples:
  # three single thresholds, two energy budgets (energy-aware and uniform), the ablation
  ttq-sweep --init runs/r20-fp/best.pt --thresholds 0.05 0.1 0.2 \\
            --energy-budgets 0.6 --uniform-budgets 0.6 --ablate-grad-scaling \\
            --epochs 10 --out sweeps/r20

  # any setting explicitly (repeatable); a quick look on a subset
  ttq-sweep --init fp.pt --setting t=0.05 --setting 'sparsity=0.5,label=half zero' \\
            --setting 'energy=25uJ,ste' --limit-train 5000 --limit-test 1000 --epochs 2 \\
            --out sweeps/quick

settings: KIND=VALUE[,OPTION...] with KIND t (Δ = t·max|w|), sparsity (fixed zero
fraction), energy (energy-aware per-layer plan for a budget: a fraction of the t=0.05
network's dense energy, or NuJ), uniform (one sparsity meeting such a budget), method
(fp, ttq, twn, bwn, int4, int8: ttq-train --quantizer NAME; fp fine-tunes the FP network
with the same recipe); options ste (no Wp/1/Wn gradient scaling), scale-lr-mult=M,
scale-init=one|least-squares (these three: TTQ only), lr=X, seed=N (default --seed),
label=NAME.

  # the method axis: TTQ against TWN, binary, INT4 and INT8 at the same budget, two seeds
  ttq-sweep --init fp.pt --methods fp ttq twn bwn int4 int8 --seeds 0 1 \\
            --limit-train 10000 --epochs 3 --out sweeps/methods

  # the learning-rate-multiplier evidence: scale init x gradient scaling, two seeds each
  ttq-sweep --init fp.pt --epochs 4 --limit-train 10000 --out sweeps/grid \\
            $(for i in one least-squares; do for s in 0 1; do for g in "" ,ste; do
                echo --setting t=0.05,scale-init=$i,seed=$s$g; done; done; done)

--ablate-grad-scaling adds a plain-STE twin of the first setting (and of every setting
with --ablate-all).

  # plan and compare for int8 hardware that keeps activations in SRAM: energy budgets,
  # energies and the Pareto front are under this scenario; the findings say whether the
  # front differs from the default scenario's (fp32, activation memory not counted)
  ttq-sweep --init fp.pt --energy-budgets 0.6 --uniform-budgets 0.6 --thresholds 0.05 \
            --activations int8 --act-memory sram --out sweeps/int8

outputs in --out: plans/<setting>.json, runs/<setting>/{last,best}.pt + log.jsonl,
report/report.html (+ comparison.{csv,tex,md}, ablation_grad_scaling.*, figures as
SVG/PNG, sweep.json). Rerunning skips finished runs and resumes interrupted ones.
"""


def build_parser() -> argparse.ArgumentParser:
    from ttq_analysis.cli_options import add_energy_options, add_sensitivity_options
    from ttq_core.cli_options import add_data_dir, add_device, add_progress
    from ttq_core.train.config import AMP_MODES, SCHEDULES
    p = argparse.ArgumentParser(
        prog="ttq-sweep", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fine-tune an FP checkpoint into TTQ under several threshold settings, "
                    "analyse each on real data and render one comparison report: accuracy, "
                    "weight sparsity and energy per setting, an accuracy-vs-energy plot with "
                    "the Pareto front, and the latent-gradient scaling ablation.",
        epilog=EPILOG)
    s = p.add_argument_group("settings")
    s.add_argument("--setting", action="append", default=[], metavar="SPEC",
                   help="one setting, KIND=VALUE[,OPTION...] (repeatable; see below)")
    s.add_argument("--thresholds", type=float, nargs="+", default=[], metavar="T",
                   help="shorthand: one t=T setting each")
    s.add_argument("--sparsities", type=float, nargs="+", default=[], metavar="R",
                   help="shorthand: one sparsity=R setting each")
    s.add_argument("--energy-budgets", nargs="+", default=[], metavar="B",
                   help="shorthand: one energy-aware setting per budget (0.6 or 25uJ)")
    s.add_argument("--uniform-budgets", nargs="+", default=[], metavar="B",
                   help="shorthand: one uniform-sparsity setting per budget")
    s.add_argument("--methods", nargs="+", default=[], metavar="NAME",
                   help="shorthand: one method=NAME setting each (fp, ttq, twn, bwn, int4, "
                        "int8: the method axis, every method fine-tuned with the same budget)")
    s.add_argument("--seeds", type=int, nargs="+", default=[], metavar="N",
                   help="run every setting that names no seed once per seed (replicates, "
                        "summarised together in the report)")
    s.add_argument("--ablate-grad-scaling", action="store_true",
                   help="add a plain-STE twin of the first setting (the LR-multiplier ablation)")
    s.add_argument("--ablate-all", action="store_true",
                   help="with --ablate-grad-scaling: a twin of every setting")
    t = p.add_argument_group("training (shared by every setting; see ttq-train --help)")
    t.add_argument("--init", required=True, metavar="FP_CKPT", help="the FP checkpoint to fine-tune")
    t.add_argument("--arch", default=None, help="architecture of a plain state_dict --init")
    t.add_argument("--epochs", type=int, default=10, help="epochs per setting (default %(default)s)")
    t.add_argument("--batch-size", type=int, default=128, help="(default %(default)s)")
    t.add_argument("--lr", type=float, default=None, help="peak LR (default: ttq-train's, 0.1)")
    t.add_argument("--scale-lr-mult", type=float, default=None, metavar="M",
                   help="LR multiplier of Wp, Wn (default: ttq-train's)")
    t.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    t.add_argument("--seed", type=int, default=0, help="(default %(default)s)")
    t.add_argument("--limit-train", type=int, default=None, metavar="N",
                   help="train on a fixed class-balanced subset of N images")
    t.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="test (and analyse) on a fixed class-balanced subset of N images")
    add_data_dir(t)
    add_device(t)
    t.add_argument("--amp", default="auto", choices=AMP_MODES,
                   help="mixed precision: auto = bf16 autocast on CUDA, off on CPU")
    t.add_argument("--compile", action="store_true", help="torch.compile (CUDA)")
    a = p.add_argument_group("planning and analysis")
    add_sensitivity_options(a)
    add_energy_options(a)
    a.add_argument("--out", required=True, metavar="DIR", help="sweep folder")
    a.add_argument("--title", default=None, help="report title")
    add_progress(a)
    return p


def settings_from_args(args: argparse.Namespace) -> list[Setting]:
    settings = [parse_setting(s) for s in args.setting]
    settings += [parse_setting(f"t={v!r}") for v in args.thresholds]
    settings += [parse_setting(f"sparsity={v!r}") for v in args.sparsities]
    settings += [parse_setting(f"energy={v}") for v in args.energy_budgets]
    settings += [parse_setting(f"uniform={v}") for v in args.uniform_budgets]
    settings += [parse_setting(f"method={v}") for v in args.methods]
    if args.ablate_grad_scaling:
        if not settings:
            settings = [parse_setting("t=0.05")]
        sources = settings if args.ablate_all else settings[:1]
        twins = []
        for s in sources:
            if not s.grad_scaling or any(o.key == s.key and not o.grad_scaling for o in settings):
                continue
            twin = Setting(s.kind, s.value, False, dict(s.overrides))
            twins.append(twin)
        settings += twins
    elif args.ablate_all:
        raise ConfigError("--ablate-all needs --ablate-grad-scaling")
    if not settings:
        raise ConfigError("no settings: give --setting, --thresholds, --sparsities, "
                          "--energy-budgets, --uniform-budgets, --methods or "
                          "--ablate-grad-scaling")
    if args.seeds:
        settings = _replicated(settings, args.seeds)
    labels, slugs = [s.label for s in settings], [s.slug for s in settings]
    if len(set(labels)) != len(labels) or len(set(slugs)) != len(slugs):
        dup = sorted({x for x in slugs if slugs.count(x) > 1})
        raise ConfigError(f"two settings share a name ({', '.join(dup)}); give one a label=NAME")
    return settings


def _replicated(settings: list[Setting], seeds: Sequence[int]) -> list[Setting]:
    """Each setting that names no seed of its own once per seed in ``seeds`` (a label the
    user gave gets " (seed N)"); settings with ``seed=N`` are kept as they are."""
    out = []
    for s in settings:
        if "seed" in s.overrides:
            out.append(s)
            continue
        custom = s.label != s.default_label()
        for seed in seeds:
            twin = Setting(s.kind, s.value, s.grad_scaling, {**s.overrides, "seed": int(seed)})
            if custom:
                twin.label = f"{s.label} (seed {seed})"
            out.append(twin)
    return out


# ----------------------------------------------------------------------------- running

def _train_config(args, setting: Setting, run_dir: Path, plan_path: Path | None):
    from ttq_core.train import TrainConfig
    cfg = TrainConfig(arch=args.arch_name, mode="ttq", init=args.init, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
                      seed=args.seed, limit_train=args.limit_train, limit_test=args.limit_test,
                      data_dir=args.data_dir, device=args.device, amp=args.amp,
                      compile=args.compile, progress=not args.no_progress, out=str(run_dir),
                      grad_scaling=setting.grad_scaling)
    if args.scale_lr_mult is not None:
        cfg.scale_lr_mult = args.scale_lr_mult
    for k, v in setting.overrides.items():
        setattr(cfg, k, v)
    if setting.kind == "method":
        if setting.value == FP_METHOD:
            # the FP fine-tune gets the quantized runs' recipe (LR, weight decay, no
            # warm-up), not ttq-train's FP-from-scratch defaults: the same budget for all
            from ttq_core.train.config import MODE_DEFAULTS
            cfg.mode = "fp"
            cfg.lr = args.lr if args.lr is not None else MODE_DEFAULTS["ttq"]["lr"]
            cfg.weight_decay = MODE_DEFAULTS["ttq"]["weight_decay"]
            cfg.warmup_epochs = MODE_DEFAULTS["ttq"]["warmup_epochs"]
        else:
            cfg.quantizer = setting.value
    elif setting.kind == "t":
        cfg.threshold = float(setting.value)
    elif setting.kind == "sparsity":
        cfg.target_sparsity = float(setting.value)
    else:
        cfg = cfg.with_threshold_plan(str(plan_path))
    return cfg


def _existing(run_dir: Path, cfg) -> str:
    """'new', 'done' or 'resume' for a run folder; an error if it holds another setting."""
    from ttq_core.checkpoint import read_checkpoint_file, validate_fields
    last = run_dir / "last.pt"
    if not last.exists():
        return "new"
    ckpt = read_checkpoint_file(last)
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise ConfigError(f"{last} is not a checkpoint of this toolkit (it holds a "
                          f"{type(ckpt).__name__}); move {run_dir} away or choose another --out")
    validate_fields(ckpt, last)  # a hand-edited field: one line naming it
    raw = (ckpt or {}).get("train_config") or {}
    # legacy values for fields older runs did not store (e.g. their least-squares scale_init)
    stored = type(cfg).from_dict(raw).to_dict() if isinstance(raw, dict) and raw else {}
    mine = cfg.resolved().to_dict()
    differ = [k for k in IDENTITY_FIELDS if k in stored and stored[k] != mine.get(k)]
    if differ:
        raise ConfigError(f"{run_dir} holds a run with different settings ({', '.join(differ)}); "
                          f"delete it or choose another --out")
    done = len(ckpt.get("history") or [])
    if done > cfg.epochs:
        raise ConfigError(f"{run_dir} already trained {done} epochs, more than --epochs "
                          f"{cfg.epochs}; raise --epochs or choose another --out")
    return "done" if done == cfg.epochs else "resume"


def run(args: argparse.Namespace) -> Path:
    """The whole sweep: plan and train every setting (reusing finished runs), analyse each
    best checkpoint and the FP baseline on the same test images, render the report."""
    from ttq_analysis import load_energy_model
    from ttq_core.checkpoint import load_model

    settings = settings_from_args(args)
    for name in ("epochs", "batch_size", "limit_train", "limit_test", "calibration_images"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    energy = load_energy_model(args.energy_model)
    from ttq_core.devices import resolve_device
    resolve_device(args.device)  # a device this machine lacks: one line before any training
    base = load_model(args.init, arch=args.arch)
    if base.is_ternary:
        raise ConfigError(f"--init {args.init} is a ternary checkpoint; sweep from the FP one")
    args.arch_name = base.arch
    out = Path(args.out)
    from .output_folder import check_destination
    check_destination(out / "report")  # refuse a foreign report/ folder before any training
    results = _plan_and_train(args, settings, out, energy)
    baseline, entries, split = _analyse(args, results, energy)
    html = _render(args, out, baseline, entries, split)
    print(_summary(entries, baseline))
    print(f"report: {html}")
    return html


def _say(msg: str) -> None:
    print(f"[ttq-sweep] {msg}", flush=True)


def _plan_and_train(args, settings: list[Setting], out: Path, energy) -> list[tuple]:
    """Plan (energy/uniform settings) and train every setting in ``out/runs/<slug>``:
    a finished run is reused, an interrupted one resumed.  Returns (setting, run folder,
    plan dict or None) per setting."""
    from ttq_analysis.plan_cli import make_plan
    from ttq_core.quantize.plan_file import ThresholdPlan
    from ttq_core.train.loop import train
    progress = not args.no_progress
    results = []
    for i, s in enumerate(settings, 1):
        run_dir = out / "runs" / s.slug
        plan_path = None
        plan_dict = None
        if s.kind in ("energy", "uniform"):
            plan_path = out / "plans" / f"{s.slug}.json"
            if plan_path.exists():
                plan = ThresholdPlan.load(plan_path)
                if plan.details.get("budget_spec") != s.value or plan.method != KINDS[s.kind]:
                    raise ConfigError(f"{plan_path} was planned for another setting; delete it "
                                      f"or choose another --out")
            else:
                _say(f"({i}/{len(settings)}) planning {s.label}")
                plan = make_plan(args.init, energy_budget=s.value, method=KINDS[s.kind],
                                 sensitivity=args.sensitivity,
                                 calibration_images=args.calibration_images,
                                 energy_model=energy, memory=args.memory,
                                 precision=args.activations, act_memory=args.act_memory,
                                 arch=args.arch,
                                 data_dir=args.data_dir, progress=progress)
                plan.details["budget_spec"] = s.value
                plan.save(plan_path)
            plan_dict = plan.to_dict()
        cfg = _train_config(args, s, run_dir, plan_path)
        state = _existing(run_dir, cfg)
        if state == "done":
            _say(f"({i}/{len(settings)}) {s.label}: finished run found in {run_dir}, reused")
        else:
            _say(f"({i}/{len(settings)}) training {s.label} -> {run_dir}"
                 + (" (resuming)" if state == "resume" else ""))
            train(dataclasses.replace(cfg, resume=state == "resume"))
        results.append((s, run_dir, plan_dict))
    return results


def _analyse(args, results, energy):
    """Analyse the FP baseline and every setting's best checkpoint on the test images the
    runs were tested on.  Returns (baseline analysis, sweep entries, the test split)."""
    from ttq_analysis import analyze
    from ttq_analysis.analysis import checkpoint_info
    from ttq_core.checkpoint import load_model, read_checkpoint_file
    from ttq_core.data import CifarSplit
    from ttq_core.devices import resolve_device

    from .comparison import SweepEntry
    progress = not args.no_progress
    device = resolve_device(args.device)
    split = CifarSplit.load("test", args.data_dir, limit=args.limit_test, progress=progress)

    def measure(path: Path | str, recorded: bool = True):
        ld = load_model(path, arch=args.arch)
        a = analyze(ld.model, data=split.for_checkpoint(ld.checkpoint, device),
                    energy_model=energy, device=device, memory=args.memory,
                    precision=args.activations, act_memory=args.act_memory, progress=progress)
        a.meta["checkpoint"] = checkpoint_info(ld, path)
        # a run's best test accuracy as recorded on the sweep's test images; the baseline's
        # measured here on the same images (its own record may be on another test set)
        acc = ((ld.checkpoint or {}).get("metrics") or {}).get("best_test_acc") if recorded else None
        a.network = a.network.with_accuracy(
            acc if acc is not None else a.network.accuracy.measured_acc, None)
        return a

    _say("analysing the FP baseline and every setting on the test images")
    baseline = measure(args.init, recorded=False)
    entries = []
    for s, run_dir, plan_dict in results:
        a = measure(run_dir / "best.pt")
        history = read_checkpoint_file(run_dir / "last.pt").get("history") or []
        entries.append(SweepEntry(s.label, s.description(), a, history, s.grad_scaling, s.key,
                                  plan_dict, {"run_dir": str(run_dir),
                                             "method": s.value if s.kind == "method" else None},
                                  s.rule(),
                                  replicate_key=s.replicate_key))
    return baseline, entries, split


def _render(args, out: Path, baseline, entries, split) -> Path:
    """The comparison report in ``out/report`` (replaced atomically)."""
    from ttq_core.train.config import MODE_DEFAULTS

    from .comparison import render_comparison
    from .render import jpeg_note
    arrays = split.arrays
    description = (f"fine-tuned on {args.limit_train or len(arrays.train.labels):,} CIFAR-10 "
                   f"training images, tested and analysed on {len(split):,} test images from "
                   f"{arrays.source}" + (" (fixed class-balanced subsets)"
                                         if args.limit_train or args.limit_test else ""))
    lr_text = args.lr if args.lr is not None else f"ttq-train's default {MODE_DEFAULTS['ttq']['lr']}"
    kinds = {e.extra.get("method") for e in entries}
    what = ("Fine-tuning (every method with the same recipe)" if kinds - {None}
            else "TTQ fine-tuning")
    recipe = (f"{what} from {args.init} for {args.epochs} epochs, batch "
              f"{args.batch_size}, {args.schedule} LR schedule from "
              f"{lr_text}, seed "
              f"{args.seed} (unless a setting names its own); energy-aware plans use the "
              f"'{args.sensitivity}' sensitivity on {args.calibration_images} training images.")
    return render_comparison(entries, out / "report", baseline=baseline, title=args.title,
                             data_description=description, recipe=recipe,
                             jpeg_note=jpeg_note(arrays.source))


def _summary(entries, baseline) -> str:
    from .comparison import comparison_table
    df = comparison_table(entries, baseline).df
    lines = [f"{'setting':<34} {'best acc':>8} {'w.sparsity':>10} {'dense uJ':>9} "
             f"{'meas. uJ':>9} {'pareto':>6}"]
    for r in df.itertuples(index=False):
        ws = "" if r.weight_sparsity != r.weight_sparsity else f"{r.weight_sparsity:.3f}"
        lines.append(f"{r.setting[:34]:<34} {100 * r.best_test_acc:>7.2f}% {ws:>10} "
                     f"{r.energy_dense_uJ:>9.2f} {r.energy_measured_uJ:>9.2f} "
                     f"{'yes' if r.pareto_measured else '':>6}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except TTQError as e:
        print(f"ttq-sweep: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # permission, not a folder, disk full, ...: one line naming the path
        print(f"ttq-sweep: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ttq-sweep: interrupted; finished runs are kept (rerun to continue)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

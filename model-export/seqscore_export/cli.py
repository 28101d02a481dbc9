"""Command line: train / export / evaluate / score / clean.  Run `python3 -m seqscore_export --help`."""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time

import numpy as np

from . import data as D
from . import features as F
from . import lifetime as LT

log = logging.getLogger("seqscore_export")
HF = argparse.ArgumentDefaultsHelpFormatter
DEFAULT_MODELS = "fusion,fusion_no_pretrain,wide_profile,lstm,transformer,profile_mlp,logistic,heuristic"
DEFAULT_RULES = ("purchase_30m=alert_rate:0.01", "churn_24h=alert_rate:0.01")


def _add_data_args(p):
    p.add_argument("--format", choices=D.FORMATS, default="taobao",
                   help="input reader: taobao (UserBehavior CSV), rees46 (Open CDP CSV), canonical (CSV or JSONL)")
    p.add_argument("--input", action="append", default=None,
                   help="input file; repeat for several files of the same format (read in order, duplicates "
                        "dropped across them); default: the format's files under --data-dir (taobao: "
                        "UserBehavior_sample.csv and UserBehavior_extra_95users.csv; rees46: 2019-Oct_head.csv)")
    p.add_argument("--data-dir", default=None,
                   help="shared data folder; default: $SEQSCORE_DATA_DIR, else ../shared/data from the repo root")


def _add_train_args(p):
    p.add_argument("--out", default=os.path.join(D.repo_root(), "models", "default"),
                   help="bundle output directory (created if missing)")
    p.add_argument("--quick", action="store_true",
                   help="CI mode: 60 users, 2 folds, one short epoch per model, no time view; NOT a real model")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (by user)")
    p.add_argument("--epochs", type=int, default=6,
                   help="maximum epochs per deep model; cross-validation picks the count (0 = its linear start)")
    p.add_argument("--rows-per-epoch", type=int, default=8192, help="training windows sampled per epoch")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size")
    p.add_argument("--lr", type=float, default=3e-3,
                   help="Adam learning rate of the models trained from scratch (lstm, transformer, profile_mlp) and "
                        "of pretraining")
    p.add_argument("--wide-lr", type=float, default=1e-3,
                   help="Adam learning rate of the wide & deep models (fusion, fusion_no_pretrain, wide_profile), "
                        "which start at the logistic regression")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay")
    p.add_argument("--logistic-l2", type=float, default=1e-3, help="L2 penalty of the logistic regression")
    p.add_argument("--pretrain-epochs", type=int, default=1, help="masked-event pretraining epochs (0 = none)")
    p.add_argument("--pretrain-windows", type=int, default=24576, help="windows per pretraining epoch")
    p.add_argument("--seed", type=int, default=17, help="seed for folds, sampling and initialisation")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; on a shared, loaded machine more than 1 is slower (OpenMP threads spin "
                        "while they wait for a core)")
    p.add_argument("--no-time-view", action="store_true", help="skip the time-based evaluation")
    p.add_argument("--max-events", type=int, default=50, help="window length N")
    p.add_argument("--horizon-ms", type=int, default=86_400_000, help="window horizon H in ms")
    p.add_argument("--session-gap-ms", type=int, default=1_800_000, help="session gap for session_events, in ms")
    p.add_argument("--recent-ms", type=int, default=1_800_000, help="the recent window of the recent_* features")
    p.add_argument("--utc-offset-ms", type=int, default=28_800_000,
                   help="fixed UTC offset for hour-of-day features (Taobao: China time, +08:00)")
    p.add_argument("--item-buckets", type=int, default=4096, help="hash buckets for item ids")
    p.add_argument("--category-buckets", type=int, default=1024, help="hash buckets for category ids")
    p.add_argument("--golden", type=int, default=240, help="number of golden windows to write (>= 200 for the "
                                                           "committed bundle)")
    p.add_argument("--d-model", type=int, default=16, help="embedding width / Transformer d_model")
    p.add_argument("--lstm-hidden", type=int, default=16, help="LSTM hidden size")
    p.add_argument("--encoder-layers", type=int, default=1, help="Transformer encoder layers")
    p.add_argument("--heads", type=int, default=2, help="attention heads")
    p.add_argument("--ff", type=int, default=32, help="Transformer feed-forward width")
    p.add_argument("--head-hidden", type=int, default=32, help="hidden width of the MLP head")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout in the Transformer and the head")
    p.add_argument("--stream-epochs", type=int, default=8,
                   help="maximum epochs (passes over the training users) of the streaming model; cross-validation "
                        "picks the count (0 = its linear start)")
    p.add_argument("--stream-lr", type=float, default=1e-3, help="Adam learning rate of the streaming model")
    p.add_argument("--stream-wide-lr", type=float, default=1e-4,
                   help="Adam learning rate of the streaming model's wide path (which starts at the logistic "
                        "regression on profile + lifetime)")
    p.add_argument("--stream-dropout", type=float, default=0.3,
                   help="dropout in the streaming model's encoder layer and head")
    p.add_argument("--state-hidden", type=int, default=16,
                   help="LSTM hidden size of the streaming model (state_size = 2 x this: h and c)")
    p.add_argument("--users-per-batch", type=int, default=8, help="user sequences per streaming training batch")
    p.add_argument("--loss-fraction", type=float, default=0.25,
                   help="fraction of a streaming batch's events that are scored (the LSTM runs over all of them)")
    p.add_argument("--restart-fraction", type=float, default=0.3,
                   help="fraction of a streaming batch's users whose recurrent state restarts at zero at a random "
                        "event (lifetime record intact), as after a model change")
    p.add_argument("--golden-users", type=int, default=36, help="users in golden-step.jsonl (>= 30 for the "
                                                                "committed bundle)")
    p.add_argument("--no-gbt", action="store_true", help="skip the gradient-boosted-trees baselines")
    p.add_argument("--stream-models", default="streaming,streaming_no_memory",
                   help="streaming variants to cross-validate: streaming (served) and the ablations "
                        "streaming_no_memory (no state, no lifetime features) and streaming_no_state (no state)")
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma-separated models to cross-validate; fusion and/or fusion_no_pretrain must be among "
                        "them (the better of the two by cross-validated ROC-AUC is served)")
    p.add_argument("--threshold-rule", action="append", default=None, metavar="OUTPUT=KIND:VALUE",
                   help="alert threshold rule per output, KIND alert_rate (fraction of all events) or precision "
                        "(out-of-fold, over >= 50 alerts); default: " + ", ".join(DEFAULT_RULES))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python3 -m seqscore_export", formatter_class=HF,
                                 description="Train the SeqScore fusion model and its ablations on real clickstream "
                                             "logs, export the ONNX bundle, evaluate it, score files offline.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{train,export,evaluate,score,clean}")

    p = sub.add_parser("train", formatter_class=HF, help="cross-validate every model, train the served one, export",
                       description="Read + clean data; cross-validate by user the fusion model, its ablations, the "
                                   "logistic regression baseline and the heuristic on the same folds; evaluate them "
                                   "on a time split; train the served model on every user; export model.onnx, "
                                   "model-spec.json, golden.jsonl, metrics.json, MODEL_CARD.md and model.pt into "
                                   "--out.")
    _add_data_args(p)
    _add_train_args(p)

    p = sub.add_parser("export", formatter_class=HF, help="re-export ONNX, spec and golden from a bundle's model.pt",
                       description="Rebuild model.onnx, model-spec.json (same constants and thresholds) and "
                                   "golden.jsonl from --model's model.pt and the data; metrics.json and "
                                   "MODEL_CARD.md are copied over.")
    _add_data_args(p)
    p.add_argument("--model", default=os.path.join(D.repo_root(), "models", "default"), help="source bundle")
    p.add_argument("--out", required=True, help="output bundle directory")
    p.add_argument("--golden", type=int, default=240, help="number of golden windows")
    p.add_argument("--golden-users", type=int, default=36, help="users in golden-step.jsonl (format 3 bundles)")
    p.add_argument("--seed", type=int, default=17, help="seed for golden window and user selection")

    p = sub.add_parser("evaluate", formatter_class=HF, help="metrics of a bundle on a data file",
                       description="Score events with the bundle (PyTorch weights) and print ROC-AUC, PR-AUC, Brier "
                                   "score and calibration error per output as JSON. The served model was trained "
                                   "on every user of its training data, so on that data these are training "
                                   "metrics; metrics.json has the cross-validated ones.")
    _add_data_args(p)
    p.add_argument("--model", default=os.path.join(D.repo_root(), "models", "default"), help="bundle directory")
    p.add_argument("--from-ms", type=int, default=None, help="only events at or after this time (epoch ms)")

    p.add_argument("--scoring", choices=("incremental", "windowed"), default=None,
                   help="incremental: the streaming model (step.onnx's weights; each user's events in order, lifetime "
                        "record and recurrent state carried); windowed: the windowed model (model.onnx's weights); "
                        "default: incremental for a format 3 bundle, windowed otherwise")

    p = sub.add_parser("score", formatter_class=HF, help="write per-event scores to CSV (offline, PyTorch)",
                       description="One row per input event after cleaning, sorted by (user_id, event_time, "
                                   "file order): user_id,timestamp,event_type,item_id,purchase_30m,churn_24h. "
                                   "timestamp is as in the input (epoch s for taobao, ms for canonical, the "
                                   "original string for rees46).")
    _add_data_args(p)
    p.add_argument("--model", default=os.path.join(D.repo_root(), "models", "default"), help="bundle directory")
    p.add_argument("--output", default="-", help="output CSV path, - for stdout")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    p.add_argument("--scoring", choices=("incremental", "windowed"), default=None,
                   help="incremental: the streaming model (step.onnx's weights; each user's events in order, lifetime "
                        "record and recurrent state carried); windowed: the windowed model (model.onnx's weights); "
                        "default: incremental for a format 3 bundle, windowed otherwise")

    p = sub.add_parser("clean", formatter_class=HF, help="apply the cleaning contract to one file",
                       description="Read one file with the cleaning rules of docs/feature-contract.md and write "
                                   "every kept event as one JSON object per line, in file order, with its physical "
                                   "line number; print the drop counts as JSON on stdout. The Java readers' parity "
                                   "test compares against this.")
    p.add_argument("--format", choices=D.FORMATS, required=True, help="input format")
    p.add_argument("--input", required=True, help="input file")
    p.add_argument("--output", required=True, help="JSONL of kept events")
    return ap


def _paths(args):
    return args.input or D.default_inputs(args.format, args.data_dir)


def _load(args, vocabulary=D.DEFAULT_VOCABULARY):
    paths = _paths(args)
    ev, report = D.load(paths, args.format, vocabulary)
    print(f"data: {', '.join(paths)}: {report.summary()}", file=sys.stderr)
    return paths, ev, report


def _parse_rules(items):
    rules = {}
    for item in items or DEFAULT_RULES:
        try:
            out, rest = item.split("=", 1)
            kind, value = rest.split(":", 1)
            rules[out.strip()] = {"kind": kind.strip(), "target": float(value)}
        except ValueError:
            raise ValueError(f"--threshold-rule {item!r}: expected OUTPUT=KIND:VALUE, e.g. purchase_30m=alert_rate:0.01")
        if out.strip() not in F.OUTPUT_NAMES:
            raise ValueError(f"--threshold-rule {item!r}: unknown output (outputs: {', '.join(F.OUTPUT_NAMES)})")
        if kind.strip() not in ("alert_rate", "precision") or not 0 < float(value) <= 1:
            raise ValueError(f"--threshold-rule {item!r}: KIND is alert_rate or precision, VALUE in (0, 1]")
    for o in F.OUTPUT_NAMES:
        rules.setdefault(o, dict(zip(("kind", "target"), _default_rule(o))))
    return rules


def _default_rule(o):
    for r in DEFAULT_RULES:
        if r.startswith(o + "="):
            k, v = r.split("=", 1)[1].split(":")
            return k, float(v)
    return "alert_rate", 0.01


def cmd_train(args) -> int:
    import torch
    from . import cv as CV
    from . import export as X
    from . import train as T
    from .card import render
    from .metrics import QUANTILE_RATES, choose_threshold, score_quantiles, sigmoid

    t_start = time.time()
    rules = _parse_rules(args.threshold_rule)
    paths, ev, report = _load(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in CV.ALL_MODELS]
    if unknown:
        raise ValueError(f"--models: unknown {unknown}; choose from {', '.join(CV.ALL_MODELS)}")
    if not {"fusion", "fusion_no_pretrain"} & set(models):
        raise ValueError("--models must include fusion or fusion_no_pretrain (the served model)")
    opts = T.TrainOptions(epochs=args.epochs, rows_per_epoch=args.rows_per_epoch, batch_size=args.batch_size,
                          lr=args.lr, wide_lr=args.wide_lr, weight_decay=args.weight_decay, logistic_l2=args.logistic_l2, seed=args.seed,
                          folds=args.folds, threads=args.threads, pretrain_epochs=args.pretrain_epochs,
                          pretrain_windows=args.pretrain_windows)
    if args.quick:
        opts.max_users, opts.folds, opts.epochs, opts.rows_per_epoch = 60, 2, 1, 512
        opts.pretrain_epochs, opts.pretrain_windows = 1, 512
        uniq = list(dict.fromkeys(ev.user.tolist()))[: opts.max_users]
        ev = ev.take(np.nonzero(np.isin(ev.user.astype(str), np.array(uniq, dtype=str)))[0])
    T.set_threads(args.threads)
    constants = F.default_constants(args.max_events, args.horizon_ms, args.session_gap_ms, args.utc_offset_ms,
                                    _zone(args.utc_offset_ms), None, args.item_buckets, args.category_buckets,
                                    args.recent_ms)
    cfg = {"d_model": args.d_model, "lstm_hidden": args.lstm_hidden, "encoder_layers": args.encoder_layers,
           "heads": args.heads, "ff": args.ff, "head_hidden": args.head_hidden, "dropout": args.dropout}
    ds = CV.build_dataset(ev, constants)
    corpus, corpus_sources = None, []
    if "fusion" in models and opts.pretrain_epochs > 0:
        extra = []
        if not args.quick and args.format == "taobao":
            dd = args.data_dir or D.default_data_dir()
            files = [(os.path.join(dd, p), f) for p, f in D.PRETRAINING_FILES]
            extra = CV.load_extra(files, constants["event_types"]["vocabulary"], exclude_paths=paths)
            corpus_sources = [os.path.basename(p) for p, _ in files if os.path.exists(p)]
        else:
            corpus_sources = [os.path.basename(p) for p in paths]
        corpus = CV.build_corpus(ds, extra, constants)
    cvres = CV.run_cv(ds, opts, models, cfg, corpus)
    both = {"fusion", "fusion_no_pretrain"} <= set(models)
    served = "fusion" if "fusion" in models else "fusion_no_pretrain"
    if both and _mean_auc(cvres.models["fusion_no_pretrain"]) > _mean_auc(cvres.models["fusion"]):
        served = "fusion_no_pretrain"
    comparison = CV.compare(cvres.models, served)
    importance = CV.importance(ds, cfg, cvres, served, opts.seed)
    tv = {"skipped": "--quick or --no-time-view"}
    if not (args.quick or args.no_time_view):
        tv = CV.time_view(ds, opts, models, cfg, cvres, corpus, served)
    model, Ta, seq_feats, prof_feats, final = CV.fit_final(ds, opts, cfg, cvres, served, corpus)
    t_stream = time.time()
    stream = _train_streaming(args, ds, opts, cfg, cvres, corpus, final, Ta, len(prof_feats), rules)

    # thresholds and quantiles: the served model's out-of-fold logits under its final calibration
    z = cvres.oof_logits[served]
    out_extra = {}
    for j, o in enumerate(F.OUTPUT_NAMES):
        a, b = cvres.calibration[served][j]
        p_all = sigmoid(a * z[:, j] + b)
        lab = ds.w[:, j] > 0
        thr, rec = choose_threshold(rules[o], ds.y[lab, j], p_all[lab], p_all)
        out_extra[o] = {"threshold": thr, "threshold_rule": rec,
                        "calibration": {"method": "platt", "a": a, "b": b,
                                        "fitted_on": "out-of-fold logits of the cross-validation"},
                        "score_quantiles": {"source": "out-of-fold scores of every event (calibrated)",
                                            "events": int(len(p_all)), "alert_rate": QUANTILE_RATES,
                                            "threshold": score_quantiles(p_all)}}
    training_data = {
        "fingerprint": ds.events.fingerprint(),
        "source": f"{args.format}:" + "+".join(os.path.basename(p) for p in paths)
                  + (" (--quick subset)" if args.quick else ""),
        "rows": int(len(ds.events)),
        "users": int(len(np.unique(ds.users))),
        "cleaning": report.as_dict(),
        "evaluation": {"method": "cross-validation by user", "folds": opts.folds, "seed": opts.seed,
                       "fold_assignment": "distinct user ids sorted as strings, permuted with numpy "
                                          "default_rng(seed), dealt round-robin into the folds"},
    }
    os.makedirs(args.out, exist_ok=True)
    spec = X.build_spec(constants, seq_feats, prof_feats, out_extra, training_data)
    X.export_onnx(model, os.path.join(args.out, "model.onnx"), {k: v[:4] for k, v in Ta.items()})
    smodel = stream["model"]
    spec["format_version"] = X.STREAMING_FORMAT_VERSION
    spec["streaming"] = X.streaming_section(stream["life_stats"], smodel.state_size, LT.RESET_GAP_MS,
                                            stream["outputs_extra"], constants["window"]["max_events"],
                                            len(seq_feats), len(prof_feats), [f["name"] for f in prof_feats])
    X.export_step_onnx(smodel, os.path.join(args.out, "step.onnx"), {k: v[:4] for k, v in Ta.items()},
                       stream["life"][:4])
    X.save_bundle_checkpoint(os.path.join(args.out, "model.pt"), model, CV.arch_of(served), smodel)
    spec = X.finalize_spec(args.out, spec)
    n_g = _write_golden(args.out, ds.encoder, np.arange(len(ds.events)), Ta, model, args.golden, args.seed)
    gs = _write_golden_step(args.out, ds.encoder, Ta, stream["life"], stream["start"], smodel, args.golden_users,
                            args.seed)
    stream["metrics"]["golden_step"] = gs
    metrics = {
        "evaluation": {
            "method": f"{opts.folds}-fold cross-validation by user; every model on the same folds; metrics per "
                      "fold, reported as mean and sd (ddof 1) over the folds",
            "folds": opts.folds, "seed": opts.seed,
            "users": int(len(np.unique(ds.users))), "events": int(len(ds)),
            "epoch_choice": "per model, the epoch count (0 = the logistic start of a wide model) with the best "
                            "mean over folds of the mean out-of-fold ROC-AUC of both outputs",
            "calibration": "Platt scaling per output; reported metrics use cross-fitted scaling (fitted on the "
                           "other folds' out-of-fold logits); the served model uses scaling fitted on all of them",
            "ece": "expected calibration error over 20 equal-mass bins",
            "churn_mask": "churn_24h metrics only over events at least 24 h before the data's last event",
        },
        "served": served,
        "models": cvres.models,
        "comparison_with_served": comparison,
        "importance": importance,
        "time_split": tv,
        "pretraining": {"folds": cvres.pretraining, "final": final["pretraining"], "sources": corpus_sources},
        "final_model": {"arch": CV.arch_of(served), "epochs": cvres.epochs[served], "seconds": final["seconds"],
                        "history": final["history"], "config": model.cfg},
        "streaming": stream["metrics"],
        "train_seconds": round(time.time() - t_start, 1),
    }
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(_nan_to_none(metrics), f, indent=2)
        f.write("\n")
    command = os.environ.get("SEQSCORE_COMMAND") or (("cd model-export && /usr/bin/python3 -m seqscore_export train "
                                                      + " ".join(shlex.quote(a) for a in sys.argv[2:]))
                                                     if sys.argv[1:2] == ["train"] else "seqscore_export train")
    card = render(spec, metrics, report.summary(), args.quick, command, time.time() - t_start, args.threads)
    with open(os.path.join(args.out, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(f"bundle: {args.out} (model_version {spec['model_version']}, served {served}, {n_g} golden windows, "
          f"{time.time() - t_start:.0f}s)", file=sys.stderr)
    for m, r in list(cvres.models.items()) + list(stream["metrics"]["models"].items()):
        cvm = r["cv"]
        print(f"  {m:20s} " + " | ".join(
            f"{o} ROC-AUC {cvm[o]['roc_auc']['mean']:.4f} ± {cvm[o]['roc_auc']['sd']:.4f}" for o in F.OUTPUT_NAMES),
            file=sys.stderr)
    return 0


def _thresholds(rules, z, calibration, y, w, source):
    from .metrics import QUANTILE_RATES, choose_threshold, score_quantiles, sigmoid
    out = {}
    for j, o in enumerate(F.OUTPUT_NAMES):
        a, b = calibration[j]
        p_all = sigmoid(a * z[:, j] + b)
        lab = w[:, j] > 0
        thr, rec = choose_threshold(rules[o], y[lab, j], p_all[lab], p_all)
        out[o] = {"threshold": thr, "threshold_rule": rec,
                  "calibration": {"method": "platt", "a": a, "b": b, "fitted_on": source},
                  "score_quantiles": {"source": "out-of-fold scores of every event (calibrated)",
                                      "events": int(len(p_all)), "alert_rate": QUANTILE_RATES,
                                      "threshold": score_quantiles(p_all)}}
    return out


def _train_streaming(args, ds, opts, cfg, cvres, corpus, final, Ta, P, rules) -> dict:
    """Cross-validates the streaming model and its baselines on the windowed harness's folds, trains the served
    streaming model on every user, and returns what the export and metrics need."""
    from . import cv as CV
    from . import stream_cv as SC
    from . import streaming as S
    from . import train as T
    t0 = time.time()
    life_raw, start = LT.lifetime_raw(ds.events.user, ds.events.time_ms, ds.events.etype,
                                      ds.constants["event_types"]["vocabulary"],
                                      ds.constants["time"]["utc_offset_ms"], LT.RESET_GAP_MS)
    so = S.StreamOptions(epochs=args.stream_epochs, users_per_batch=args.users_per_batch,
                         loss_fraction=args.loss_fraction, restart_fraction=args.restart_fraction, lr=args.stream_lr,
                         wide_lr=args.stream_wide_lr, weight_decay=args.weight_decay)
    if args.quick:
        so.epochs = 1
    scfg = dict(cfg, state_hidden=args.state_hidden, dropout=args.stream_dropout)
    variants = [m.strip() for m in args.stream_models.split(",") if m.strip()]
    if "streaming" not in variants or any(m not in SC.STREAM_VARIANTS for m in variants):
        raise ValueError(f"--stream-models {args.stream_models!r}: streaming plus any of "
                         f"{', '.join(m for m in SC.STREAM_VARIANTS if m != 'streaming')}")
    sres = SC.run_stream_cv(ds, life_raw, start, cvres.folds, opts, so, scfg, cvres.seq_inits, variants=tuple(variants),
                            gbt=not args.no_gbt, fusion_oof=cvres.oof_logits.get("fusion"))
    seq_init = final.get("seq_init")
    if seq_init is None and corpus is not None:  # the served windowed model skipped pretraining; the streaming one
        pm = T.build_seq_model(ds.constants, P, cfg, opts.seed + 77_000)  # uses it (as in its cross-validation)
        T.pretrain(pm, corpus, _seq_stats(ds), np.arange(len(corpus["mask"])), opts, opts.seed + 77_007)
        seq_init = T.seq_state(pm)
    smodel, life, life_stats, sfinal = SC.fit_final_streaming(ds, life_raw, start, opts, so, scfg,
                                                              sres["epochs"]["streaming"],
                                                              sres["calibration"]["streaming"], seq_init, Ta, P)
    outputs_extra = _thresholds(rules, sres["oof_logits"]["streaming"], sres["calibration"]["streaming"], ds.y, ds.w,
                                "out-of-fold logits of the streaming model's cross-validation")
    models = dict(sres["models"])
    ref = {m: cvres.models[m] for m in ("fusion", "logistic") if m in cvres.models}
    comparison = CV.compare(dict(models, **ref), "streaming")
    metrics = {
        "served": "streaming",
        "models": models,
        "windowed_reference": sorted(ref),
        "comparison_with_streaming": comparison,
        "targets": _targets(comparison),
        "rebuilt": sres["rebuilt"],
        "lifetime": {"features": [f["name"] for f in life_stats], "reset_gap_ms": LT.RESET_GAP_MS,
                     "resets_in_data": int(start.sum() - len(np.unique(ds.users)))},
        "options": {"epochs": so.epochs, "users_per_batch": so.users_per_batch, "loss_fraction": so.loss_fraction,
                    "restart_fraction": so.restart_fraction, "lr": so.lr, "wide_lr": so.wide_lr,
                    "weight_decay": so.weight_decay,
                    "pretrained_encoder": any(x is not None for x in (cvres.seq_inits or []))},
        "final_model": {"epochs": sfinal["epochs"], "seconds": sfinal["seconds"], "history": sfinal["history"],
                        "config": smodel.cfg, "state_size": smodel.state_size},
        "train_seconds": round(time.time() - t0, 1),
    }
    return {"model": smodel, "life": life, "life_stats": life_stats, "start": start, "metrics": metrics,
            "outputs_extra": outputs_extra, "oof": sres["oof_logits"]}


def _seq_stats(ds):
    seq_feats, _ = F.compute_stats(ds.raw, np.arange(len(ds)), ds.profile_names)
    return seq_feats


def _targets(cmp_) -> dict:
    out = {}
    for name, other, margin in (("no_worse_than_windowed_fusion_by_0.005", "fusion", -0.005),
                                ("ahead_of_logistic_lifetime", "logistic_lifetime", 0.0),
                                ("ahead_of_gbt_lifetime", "gbt_lifetime", 0.0)):
        if other not in cmp_[F.OUTPUT_NAMES[0]]:
            continue
        diffs = {o: cmp_[o][other]["diff"] for o in F.OUTPUT_NAMES}
        ok = all((d >= margin) if margin < 0 else (d > margin) for d in diffs.values())
        out[name] = {"met": bool(ok), "diff": diffs, "against": other, "margin": margin}
    return out


def _write_golden_step(out_dir, encoder, Ta, life, start, model, n_users, seed) -> dict:
    from . import export as X
    users = X.pick_golden_users(encoder, n_users, seed)
    return X.write_golden_step(os.path.join(out_dir, "golden-step.jsonl"), encoder, users,
                               lambda rows: {k: v[rows] for k, v in Ta.items()},
                               lambda rows: (life[rows], start[rows]), model)


def _mean_auc(r) -> float:
    return float(np.mean([r["cv"][o]["roc_auc"]["mean"] for o in F.OUTPUT_NAMES]))


def _zone(off_ms: int) -> str:
    sign = "+" if off_ms >= 0 else "-"
    m = abs(off_ms) // 60000
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def _nan_to_none(o):
    if isinstance(o, float) and o != o:
        return None
    if isinstance(o, dict):
        return {k: _nan_to_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_nan_to_none(v) for v in o]
    if isinstance(o, np.floating):
        return _nan_to_none(float(o))
    if isinstance(o, np.integer):
        return int(o)
    return o


def _write_golden(out_dir, encoder, candidate_rows, tensors, model, n, seed):
    from . import export as X
    from .train import predict
    rows = X.pick_golden_rows(encoder, candidate_rows, n, seed)
    sub = {k: v[rows] for k, v in tensors.items()}
    p = predict(model, sub)
    return X.write_golden(os.path.join(out_dir, "golden.jsonl"), encoder, rows, sub, p)


def _bundle_data(args, spec):
    paths, ev, report = _load(args, spec["event_types"]["vocabulary"])
    enc = F.spec_encoder(ev, spec)
    return paths, ev, report, enc


def cmd_export(args) -> int:
    import shutil
    from . import export as X
    spec, model = X.load_bundle(args.model)
    if "reasons" not in spec:
        from . import reasons as R
        spec["reasons"] = R.spec_section([f["name"] for f in spec["profile_features"]])
    paths, ev, report, enc = _bundle_data(args, spec)
    tensors = F.encode_all(enc, None, spec["sequence_features"], spec["profile_features"])
    os.makedirs(args.out, exist_ok=True)
    X.export_onnx(model, os.path.join(args.out, "model.onnx"), {k: v[:4] for k, v in tensors.items()})
    if os.path.abspath(args.out) != os.path.abspath(args.model):
        for name in ("model.pt", "metrics.json", "MODEL_CARD.md"):
            if os.path.exists(os.path.join(args.model, name)):
                shutil.copy(os.path.join(args.model, name), os.path.join(args.out, name))
    extra = ""
    if "streaming" in spec:
        _, smodel = X.load_streaming(args.model)
        life, start = _stream_lifetime(spec, ev)
        X.export_step_onnx(smodel, os.path.join(args.out, spec["streaming"]["onnx_file"]),
                           {k: v[:4] for k, v in tensors.items()}, life[:4])
    spec = X.finalize_spec(args.out, spec)
    n = _write_golden(args.out, enc, np.arange(len(ev)), tensors, model, args.golden, args.seed)
    if "streaming" in spec:
        gs = _write_golden_step(args.out, enc, tensors, life, start, smodel, args.golden_users, args.seed)
        extra = f", streaming model_version {spec['streaming']['model_version']}, {gs['users']} golden-step users"
    print(f"bundle: {args.out} (model_version {spec['model_version']}, {n} golden windows{extra})", file=sys.stderr)
    return 0


def _stream_lifetime(spec, ev):
    """Standardised lifetime features and reset flags of every event, with the spec's constants."""
    st = spec["streaming"]
    LT.check_names([f["name"] for f in st["lifetime_features"]], spec["event_types"]["vocabulary"])
    raw, start = LT.lifetime_raw(ev.user, ev.time_ms, ev.etype, spec["event_types"]["vocabulary"],
                                 spec["time"]["utc_offset_ms"], st["reset_gap_ms"])
    return LT.standardise(raw, st["lifetime_features"]), start


def _scoring(args, spec) -> str:
    mode = args.scoring or ("incremental" if "streaming" in spec else "windowed")
    if mode == "incremental" and "streaming" not in spec:
        raise ValueError(f"--scoring incremental needs a format 3 bundle; {args.model} is format "
                         f"{spec.get('format_version')} (use --scoring windowed)")
    return mode


def _stream_probs(spec, smodel, ev, enc, rows_wanted=None) -> np.ndarray:
    """[n, 2] calibrated streaming scores of every event (each user's events in order, state carried), computed
    a chunk of whole users at a time through the parallel forward (equal to step.onnx event by event)."""
    from . import streaming as S
    life, start = _stream_lifetime(spec, ev)
    n = len(ev)
    out = np.zeros((n, 2), dtype=np.float32)
    bounds = np.r_[0, np.nonzero(ev.user[1:] != ev.user[:-1])[0] + 1, n]  # where each user's events start
    a = 0
    while a < n:
        b = int(bounds[np.searchsorted(bounds, a + F.CHUNK, side="right") - 1])  # whole users, ~CHUNK events
        if b <= a:  # one user longer than a chunk
            b = int(bounds[np.searchsorted(bounds, a, side="right")])
        rows = np.arange(a, b)
        T = F.encode_all(enc, rows, spec["sequence_features"], spec["profile_features"])
        segs = S.segments(ev.user[rows], start[rows], np.arange(len(rows)))
        z = S.predict_logits(smodel, T, life[rows], segs, len(rows))
        out[rows] = (1 / (1 + np.exp(-(z * smodel.calib_a.numpy() + smodel.calib_b.numpy())))).astype(np.float32)
        a = b
    return out


def cmd_evaluate(args) -> int:
    from . import export as X
    from . import labels as L
    from .metrics import all_metrics
    from .train import predict
    spec, model = X.load_bundle(args.model)
    mode = _scoring(args, spec)
    paths, ev, report, enc = _bundle_data(args, spec)
    vocab = spec["event_types"]["vocabulary"]
    pu, ch, cm = L.compute_labels(ev.user, ev.etype, ev.time_ms, vocab.index("buy") + 1)
    rows = np.arange(len(ev)) if args.from_ms is None else np.nonzero(ev.time_ms >= args.from_ms)[0]
    if len(rows) == 0:
        raise D.DataError(f"no events at or after {args.from_ms} ms")
    if mode == "incremental":  # the state needs every earlier event of the user, so score all, report rows
        _, smodel = X.load_streaming(args.model)
        p = _stream_probs(spec, smodel, ev, enc)[rows]
        version = spec["streaming"]["model_version"]
    else:
        tensors = F.encode_all(enc, rows, spec["sequence_features"], spec["profile_features"])
        p = predict(model, tensors)
        version = spec["model_version"]
    m = cm[rows] > 0
    res = {"purchase_30m": all_metrics(pu[rows], p[:, 0]), "churn_24h": all_metrics(ch[rows][m], p[m, 1])}
    print(json.dumps(_nan_to_none({"input": paths, "scoring": mode, "model_version": version,
                                   "events": int(len(rows)), "metrics": res}), indent=2))
    return 0


def cmd_score(args) -> int:
    import csv
    import torch
    from . import export as X
    from .train import predict
    torch.set_num_threads(max(1, args.threads))
    spec, model = X.load_bundle(args.model)
    mode = _scoring(args, spec)
    paths, ev, report, enc = _bundle_data(args, spec)
    vocab = spec["event_types"]["vocabulary"]
    p_all = None
    if mode == "incremental":
        _, smodel = X.load_streaming(args.model)
        p_all = _stream_probs(spec, smodel, ev, enc)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8", newline="")
    try:
        out.write("user_id,timestamp,event_type,item_id,purchase_30m,churn_24h\n")
        w = csv.writer(out, lineterminator="\n")
        for a in range(0, len(ev), F.CHUNK):
            rows = np.arange(a, min(len(ev), a + F.CHUNK))
            if p_all is not None:
                p = p_all[rows]
            else:
                t = F.encode_all(enc, rows, spec["sequence_features"], spec["profile_features"])
                p = predict(model, t)
            for j, r in enumerate(rows):
                w.writerow([ev.user[r], ev.raw_time[r], vocab[int(ev.etype[r]) - 1], ev.item[r],
                            f"{float(p[j, 0]):.8f}", f"{float(p[j, 1]):.8f}"])
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"scored {len(ev)} events ({mode}) -> {args.output}", file=sys.stderr)
    return 0


def cmd_clean(args) -> int:
    ev, report = D.read(args.input, args.format)
    ev = D.drop_duplicates(ev, report)
    ev = ev.take(np.argsort(ev.order, kind="stable"))
    report.kept = len(ev)
    with open(args.output, "w", encoding="utf-8") as f:
        for i in range(len(ev)):
            rec = {"line": ev.line(i)}
            rec.update(ev.canonical(i))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(json.dumps(report.as_dict()))
    return 0


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    import warnings
    warnings.filterwarnings("ignore", category=UserWarning)
    cmds = {"train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate, "score": cmd_score,
            "clean": cmd_clean}
    try:
        return cmds[args.cmd](args)
    except D.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

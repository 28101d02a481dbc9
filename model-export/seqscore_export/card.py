"""MODEL_CARD.md, generated from the training results so it never drifts from metrics.json."""
from __future__ import annotations

from .model import ARCHS

DESCRIPTIONS = {
    "fusion": "LSTM + Transformer encoder + profile MLP, concatenated into an MLP head (the served model)",
    "lstm": "LSTM branch only + MLP head",
    "transformer": "Transformer-encoder branch only + MLP head",
    "profile_mlp": "profile MLP only + MLP head",
    "logistic": "logistic regression on the standardised profile features",
}


def _f(x):
    return "n/a" if x != x else f"{x:.4f}"


def render(spec: dict, metrics: dict, report: dict, split: dict, quick: bool, command: str, cfg: dict,
           verdict: str, seconds: float = float("nan"), threads: int = 2) -> str:
    w, td = spec["window"], spec["training_data"]
    lines = [
        "# Model card: SeqScore default model",
        "",
        f"- model_version: `{spec['model_version']}` (see model-spec.json)",
        f"- files: model.onnx (served), model-spec.json (every feature constant), golden.jsonl (parity vectors),",
        "  metrics.json (fusion + ablations), MODEL_CARD.md, model.pt (PyTorch weights, for offline `score` only)",
        f"- produced by: `{command}`" + ("  **(--quick run: NOT a real model)**" if quick else ""),
        "",
        "## Intended use",
        "Scoring every click of an e-commerce clickstream in the Flink job, to raise two alert types:",
        "HIGH_PURCHASE_INTENT (`purchase_30m`) and CHURN_RISK (`churn_24h`). It is a demonstration/reference model",
        "trained on a 600-user public sample: use it to exercise the pipeline and the Python/Java parity, not to make",
        "decisions about real customers. Retrain on your own data before any real use.",
        "",
        "## Data and terms",
        "Taobao UserBehavior (Alibaba, Tianchi dataId 649): a 600-user head of the public file, 9 days",
        "(2017-11-25 to 2017-12-03, China time). Released for research use under Tianchi's terms; it is not",
        "redistributed here (only derived weights and 200+ golden windows of it are). Cleaning:",
        f"`{report}`.",
        f"Training data fingerprint `{td['fingerprint']}` (sha256 of the cleaned events), {td['rows']} events,"
        f" {td['users']} users. Split by user with seed {split['seed']}: {split['train_users']} training users"
        f" ({split['train_events']} events), {split['validation_users']} validation users"
        f" ({split['validation_events']} events). Normalisation constants come from the training split only.",
        "",
        "## Targets (exact, per event e at time t of user u)",
        "- `purchase_30m` = 1 if u has a buy with timestamp in (t, t+1800 s].",
        "- `churn_24h` = 1 if u has no event at all in (t, t+86400 s]; defined only for t <= last timestamp in the data"
        " - 86400 s, other events are masked out of the loss and the metrics.",
        "",
        "## Features and model",
        f"Window: last {w['max_events']} events within {w['horizon_ms'] // 3600000} h, ending at e; session gap"
        f" {w['session_gap_ms'] // 60000} min; time zone {spec['time']['zone']}. Definitions: model-export/README.md"
        " and docs/feature-contract.md.",
        f"Sizes: d_model {cfg['d_model']}, LSTM hidden {cfg['lstm_hidden']}, {cfg['encoder_layers']} encoder layer(s),"
        f" {cfg['heads']} heads, feed-forward {cfg['ff']}; embeddings type {cfg['type_emb']}, item {cfg['item_emb']},"
        f" category {cfg['category_emb']}. Loss: multi-task BCE with the churn mask and a positive-class weight per"
        " output (negatives/positives on the training split, capped). Adam, fixed seeds; each epoch samples a fixed"
        " number of training windows; early stopping on the mean validation ROC-AUC of both outputs.",
        "",
        "## Validation metrics (validation users only)",
        "",
        "| model | purchase_30m ROC-AUC | purchase_30m PR-AUC | churn_24h ROC-AUC | churn_24h PR-AUC | params | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in ARCHS:
        if a not in metrics:
            continue
        m = metrics[a]
        lines.append(f"| {a} | {_f(m['purchase_30m']['roc_auc'])} | {_f(m['purchase_30m']['pr_auc'])} | "
                     f"{_f(m['churn_24h']['roc_auc'])} | {_f(m['churn_24h']['pr_auc'])} | {m['parameters']} | "
                     f"{m['best_epoch']} |")
    pm = metrics.get("fusion", {})
    if pm:
        lines.append("")
        lines.append(f"Base rates on validation: purchase_30m {pm['purchase_30m']['positives']}/"
                     f"{pm['purchase_30m']['events']}, churn_24h {pm['churn_24h']['positives']}/"
                     f"{pm['churn_24h']['events']} (masked events excluded). PR-AUC of a random scorer = base rate.")
    lines += ["", "Models: " + "; ".join(f"`{a}` = {DESCRIPTIONS[a]}" for a in ARCHS), "", "### Does fusion win?",
              verdict, "", "### What was tried",
              "- Sizes: the issue's ORT measurements put d_model 64 / LSTM 64 / 2 encoder layers at ~200 µs per row"
              " (over budget). d_model 32 / LSTM 32 / one encoder layer / feed-forward 64 measured 112 µs per event"
              " at batch 64 in Java ORT on a quiet core, still over; d_model 16 / LSTM 16 / feed-forward 32"
              " measured 65 µs with validation metrics no worse, so those are the defaults (docs/benchmarks.md).",
              "- Embeddings of 16 (item) and 8 (category, type) made the sequence branches memorise training users'"
              " items: training loss fell while validation purchase ROC-AUC stayed near 0.5-0.54. Embeddings of"
              " width 4 plus weight decay 1e-4 generalise better; the generalisable item signal is carried by the"
              " same_item / same_category sequence features.",
              "- All sequence models overfit within a few epochs of 12k sampled windows; early stopping keeps the"
              " best validation epoch.",
              "", f"Training time of this run: {seconds:.0f} s wall clock with {threads} torch threads (shared machine).",
              "", "## Alert thresholds"]
    for o in spec["outputs"]:
        r = o["threshold_rule"]
        lines.append(f"- `{o['name']}` ({o['alert_type']}): threshold {o['threshold']:.6f}. Rule: {r['rule']}; "
                     f"fallback: {r['fallback']}; used: {r['used']}. On validation: precision "
                     f"{_f(r['validation_precision'])}, recall {_f(r['validation_recall'])}, alert rate "
                     f"{_f(r['validation_alert_rate'])}.")
    lines += [
        "",
        "## Serving cost",
        "Budget: at most 100 µs per event at batch 64 on one core in ONNX Runtime Java. The sizes above were chosen",
        "by measuring that cost with `bin/seqscore bench` (1 intra-op thread); the figures for this bundle and the",
        "command are in docs/benchmarks.md.",
        "",
        "## Limits",
        "- Tiny training set (600 users, 9 days); metrics are noisy (a few hundred validation positives) and the",
        "  validation split is by user from the same 9 days, not a later time period.",
        "- Churn here means 24 h of silence in a 9-day log; it is a proxy, not customer churn.",
        "- Item and category ids are hashed into buckets (collisions); item identities barely transfer between users.",
        "- The training windows per epoch are sampled to meet the 10-minute CPU budget; more epochs or data may",
        "  change the ranking of the models.",
        "- Probabilities are not calibrated (positive-class weights inflate them); use the thresholds above.",
        "",
    ]
    return "\n".join(lines)

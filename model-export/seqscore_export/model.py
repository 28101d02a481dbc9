"""The fusion model (LSTM + BERT-style Transformer encoder + profile MLP) and its ablations.

Every model takes the same six named inputs (docs/feature-contract.md) and returns (purchase_30m, churn_24h)
probabilities; ablations simply ignore the inputs they do not use. ``forward_logits`` is used in training.
"""
from __future__ import annotations

import torch
from torch import nn

ARCHS = ("fusion", "lstm", "transformer", "profile_mlp", "logistic")

DEFAULT_CONFIG = {
    "d_model": 32,
    "lstm_hidden": 32,
    "encoder_layers": 1,
    "heads": 2,
    "ff": 64,
    "type_emb": 4,
    "item_emb": 4,
    "category_emb": 4,
    "profile_hidden": 32,
    "head_hidden": 64,
    "dropout": 0.1,
}


class SeqEmbed(nn.Module):
    """Embeds (event_type, item_bucket, category_bucket, seq_numeric) into d_model; padding positions -> 0."""

    def __init__(self, n_types, item_buckets, category_buckets, n_seq, cfg):
        super().__init__()
        self.type_emb = nn.Embedding(n_types + 1, cfg["type_emb"], padding_idx=0)
        self.item_emb = nn.Embedding(item_buckets + 1, cfg["item_emb"], padding_idx=0)
        self.cat_emb = nn.Embedding(category_buckets + 1, cfg["category_emb"], padding_idx=0)
        d_in = cfg["type_emb"] + cfg["item_emb"] + cfg["category_emb"] + n_seq
        self.proj = nn.Linear(d_in, cfg["d_model"])

    def forward(self, event_type, item_bucket, category_bucket, seq_numeric, mask):
        x = torch.cat([self.type_emb(event_type), self.item_emb(item_bucket), self.cat_emb(category_bucket),
                       seq_numeric], dim=-1)
        return torch.relu(self.proj(x)) * mask.unsqueeze(-1)


class LSTMBranch(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.lstm = nn.LSTM(cfg["d_model"], cfg["lstm_hidden"], batch_first=True)
        self.out_dim = cfg["lstm_hidden"]

    def forward(self, x, mask):
        # windows are left-padded and end with e, so the last step's output summarises the window
        y, _ = self.lstm(x)
        return y[:, -1, :]


class TransformerBranch(nn.Module):
    """BERT-style: learned positions, bidirectional self-attention, padding mask, masked mean pooling."""

    def __init__(self, cfg, max_events):
        super().__init__()
        d = cfg["d_model"]
        self.pos = nn.Parameter(torch.zeros(1, max_events, d))
        nn.init.normal_(self.pos, std=0.02)
        self.norm = nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(d, cfg["heads"], cfg["ff"], cfg["dropout"], batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg["encoder_layers"], enable_nested_tensor=False)
        self.out_dim = d

    def forward(self, x, mask):
        h = self.norm(x + self.pos)
        pad = mask < 0.5  # float mask -> bool key padding mask inside the graph
        h = self.encoder(h, src_key_padding_mask=pad)
        m = mask.unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class ProfileMLP(nn.Module):
    def __init__(self, n_profile, cfg):
        super().__init__()
        h = cfg["profile_hidden"]
        self.net = nn.Sequential(nn.Linear(n_profile, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.out_dim = h

    def forward(self, profile):
        return self.net(profile)


class SeqScoreModel(nn.Module):
    def __init__(self, arch, n_types, item_buckets, category_buckets, n_seq, n_profile, max_events, cfg=None):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch}")
        cfg = dict(DEFAULT_CONFIG, **(cfg or {}))
        self.arch = arch
        self.cfg = cfg
        use_seq = arch in ("fusion", "lstm", "transformer")
        self.embed = SeqEmbed(n_types, item_buckets, category_buckets, n_seq, cfg) if use_seq else None
        self.lstm = LSTMBranch(cfg) if arch in ("fusion", "lstm") else None
        self.transformer = TransformerBranch(cfg, max_events) if arch in ("fusion", "transformer") else None
        self.profile_mlp = ProfileMLP(n_profile, cfg) if arch in ("fusion", "profile_mlp") else None
        if arch == "logistic":
            self.head = nn.Linear(n_profile, 2)
        else:
            dim = sum(b.out_dim for b in (self.lstm, self.transformer, self.profile_mlp) if b is not None)
            self.head = nn.Sequential(nn.Dropout(cfg["dropout"]), nn.Linear(dim, cfg["head_hidden"]), nn.ReLU(),
                                      nn.Linear(cfg["head_hidden"], 2))

    def forward_logits(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile):
        if self.arch == "logistic":
            return self.head(profile)
        parts = []
        if self.embed is not None:
            x = self.embed(event_type, item_bucket, category_bucket, seq_numeric, mask)
            if self.lstm is not None:
                parts.append(self.lstm(x, mask))
            if self.transformer is not None:
                parts.append(self.transformer(x, mask))
        if self.profile_mlp is not None:
            parts.append(self.profile_mlp(profile))
        return self.head(torch.cat(parts, dim=-1))

    def forward(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile):
        p = torch.sigmoid(self.forward_logits(event_type, item_bucket, category_bucket, seq_numeric, mask, profile))
        return p[:, 0], p[:, 1]


def build(arch, spec_consts: dict, n_profile: int, cfg=None) -> SeqScoreModel:
    from .features import SEQUENCE_FEATURES
    return SeqScoreModel(arch, len(spec_consts["event_types"]["vocabulary"]), spec_consts["hash"]["item_buckets"],
                         spec_consts["hash"]["category_buckets"], len(SEQUENCE_FEATURES), n_profile,
                         spec_consts["window"]["max_events"], cfg)

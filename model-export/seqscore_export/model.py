"""The wide & deep fusion model (LSTM + BERT-style Transformer encoder + profile MLP, beside a linear path from the
profile straight into each head) and its ablations; the masked-event pretraining head of the Transformer branch.

Every model takes the same six named inputs (docs/feature-contract.md). ``forward_logits`` returns raw logits (used
in training); ``forward`` returns calibrated probabilities ``sigmoid(a * logit + b)`` per output, where (a, b) are
buffers that the training harness sets from out-of-fold predictions (Platt scaling), so the exported ONNX graph
outputs probabilities.
"""
from __future__ import annotations

import torch
from torch import nn

# Deep architectures; "logistic" is the wide path alone, trained as a logistic regression.
ARCHS = ("fusion", "wide_profile", "lstm", "transformer", "profile_mlp", "logistic")
WIDE_ARCHS = ("fusion", "wide_profile", "logistic")
SEQ_ARCHS = ("fusion", "lstm", "transformer")

DEFAULT_CONFIG = {
    "d_model": 16,
    "lstm_hidden": 16,
    "encoder_layers": 1,
    "heads": 2,
    "ff": 32,
    "type_emb": 4,
    "item_emb": 4,
    "category_emb": 4,
    "profile_hidden": 32,
    "head_hidden": 32,
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
    """Windows are left-padded and end with e, so the last step's output summarises the window. Without biases and
    with zero inputs at padding, the state stays exactly zero through the padding: the output does not depend on
    how much padding precedes the window, so training can drop a batch's common padding (see train.batch)."""

    def __init__(self, cfg):
        super().__init__()
        self.lstm = nn.LSTM(cfg["d_model"], cfg["lstm_hidden"], batch_first=True, bias=False)
        self.out_dim = cfg["lstm_hidden"]

    def forward(self, x, mask):
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

    def tokens(self, x, mask):
        """Per-position outputs [B, n, d]; n < N when training dropped a batch's common left padding, and positions
        stay aligned to the window's end."""
        pos = self.pos if x.shape[1] == self.pos.shape[1] else self.pos[:, self.pos.shape[1] - x.shape[1]:]
        h = self.norm(x + pos)
        pad = mask < 0.5  # float mask -> bool key padding mask inside the graph
        return self.encoder(h, src_key_padding_mask=pad)

    def forward(self, x, mask):
        h = self.tokens(x, mask)
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
        use_seq = arch in SEQ_ARCHS
        self.embed = SeqEmbed(n_types, item_buckets, category_buckets, n_seq, cfg) if use_seq else None
        self.lstm = LSTMBranch(cfg) if arch in ("fusion", "lstm") else None
        self.transformer = TransformerBranch(cfg, max_events) if arch in ("fusion", "transformer") else None
        self.profile_mlp = ProfileMLP(n_profile, cfg) if arch in ("fusion", "wide_profile", "profile_mlp") else None
        self.wide = nn.Linear(n_profile, 2) if arch in WIDE_ARCHS else None
        dim = sum(b.out_dim for b in (self.lstm, self.transformer, self.profile_mlp) if b is not None)
        if dim:
            self.head = nn.Sequential(nn.Dropout(cfg["dropout"]), nn.Linear(dim, cfg["head_hidden"]), nn.ReLU(),
                                      nn.Linear(cfg["head_hidden"], 2))
            if self.wide is not None:
                # Wide & deep starts as exactly its linear part: the deep head adds nothing until trained.
                nn.init.zeros_(self.head[-1].weight)
                nn.init.zeros_(self.head[-1].bias)
        else:
            self.head = None
        # Platt scaling per output, applied in forward(): p = sigmoid(a * logit + b).
        self.register_buffer("calib_a", torch.ones(2))
        self.register_buffer("calib_b", torch.zeros(2))

    def deep_parts(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile):
        parts = []
        if self.embed is not None:
            x = self.embed(event_type, item_bucket, category_bucket, seq_numeric, mask)
            if self.lstm is not None:
                parts.append(self.lstm(x, mask))
            if self.transformer is not None:
                parts.append(self.transformer(x, mask))
        if self.profile_mlp is not None:
            parts.append(self.profile_mlp(profile))
        return parts

    def forward_logits(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile):
        logits = None
        if self.head is not None:
            logits = self.head(torch.cat(self.deep_parts(event_type, item_bucket, category_bucket, seq_numeric, mask,
                                                         profile), dim=-1))
        if self.wide is not None:
            w = self.wide(profile)
            logits = w if logits is None else logits + w
        return logits

    def forward(self, event_type, item_bucket, category_bucket, seq_numeric, mask, profile):
        z = self.forward_logits(event_type, item_bucket, category_bucket, seq_numeric, mask, profile)
        p = torch.sigmoid(z * self.calib_a + self.calib_b)
        return p[:, 0], p[:, 1]


class MaskedEventModel(nn.Module):
    """BERT-style pretraining of SeqEmbed + TransformerBranch: some real positions of a window are replaced by a
    learned [MASK] vector; the encoder's output there predicts the hidden event's type, item bucket and category
    bucket. Only ``embed`` and ``transformer`` are kept (copied into the fusion model); the rest is discarded."""

    def __init__(self, embed: SeqEmbed, transformer: TransformerBranch, n_types, item_buckets, category_buckets):
        super().__init__()
        d = transformer.out_dim
        self.embed = embed
        self.transformer = transformer
        self.mask_vec = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_vec, std=0.02)
        self.type_head = nn.Linear(d, n_types + 1)
        self.item_head = nn.Linear(d, item_buckets + 1)
        self.cat_head = nn.Linear(d, category_buckets + 1)

    def forward(self, event_type, item_bucket, category_bucket, seq_numeric, mask, hide):
        """hide: bool [B, N], True at the positions to predict. Returns (type, item, category) logits at them."""
        x = self.embed(event_type, item_bucket, category_bucket, seq_numeric, mask)
        x = torch.where(hide.unsqueeze(-1), self.mask_vec.expand_as(x), x)
        h = self.transformer.tokens(x, mask)[hide]
        return self.type_head(h), self.item_head(h), self.cat_head(h)


def build(arch, spec_consts: dict, n_profile: int, cfg=None) -> SeqScoreModel:
    from .features import SEQUENCE_FEATURES
    return SeqScoreModel(arch, len(spec_consts["event_types"]["vocabulary"]), spec_consts["hash"]["item_buckets"],
                         spec_consts["hash"]["category_buckets"], len(SEQUENCE_FEATURES), n_profile,
                         spec_consts["window"]["max_events"], cfg)

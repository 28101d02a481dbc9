"""Model properties the training harness relies on."""
import numpy as np
import torch

from seqscore_export import features as F
from seqscore_export.model import build
from seqscore_export.train import batch, predict_logits


def random_tensors(n, N=50, P=27, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.integers(1, N + 1, n)
    L[:3] = [1, 7, N]
    valid = np.arange(N)[None, :] >= (N - L)[:, None]
    T = {"event_type": np.where(valid, rng.integers(1, 6, (n, N)), 0).astype(np.int64),
         "item_bucket": np.where(valid, rng.integers(1, 4097, (n, N)), 0).astype(np.int64),
         "category_bucket": np.where(valid, rng.integers(1, 1025, (n, N)), 0).astype(np.int64),
         "seq_numeric": (rng.normal(size=(n, N, 6)) * valid[..., None]).astype(np.float32),
         "mask": valid.astype(np.float32),
         "profile": rng.normal(size=(n, P)).astype(np.float32)}
    return T


def test_dropping_common_padding_changes_no_output():
    """Training drops each batch's shared left padding; the exported graph always sees N positions. Both must give
    the same outputs, for the LSTM (no biases: zero state through zero padding) and the Transformer (key padding
    mask, positions aligned to the window's end)."""
    torch.manual_seed(0)
    T = random_tensors(64)
    for arch in ("fusion", "lstm", "transformer"):
        m = build(arch, F.default_constants(), 27, {})
        for p in m.parameters():  # leave the zero-initialised head, so that the deep part matters
            torch.nn.init.normal_(p, std=0.3)
        m.eval()
        short = np.argsort(T["mask"].sum(1))[:16]  # a batch of short windows: much padding to drop
        assert batch(T, short)[0].shape[1] < 50
        with torch.no_grad():
            full = m.forward_logits(*batch(T, short, trim=False)).numpy()
            trimmed = m.forward_logits(*batch(T, short)).numpy()
        np.testing.assert_allclose(trimmed, full, rtol=1e-5, atol=1e-5, err_msg=arch)
        z = predict_logits(m, T)  # sorted by length, trimmed per batch, put back in order
        with torch.no_grad():
            want = m.forward_logits(*batch(T, np.arange(64), trim=False)).numpy()
        np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5, err_msg=arch)


def test_wide_and_deep_starts_as_its_linear_part():
    torch.manual_seed(0)
    T = random_tensors(8)
    m = build("fusion", F.default_constants(), 27, {})
    m.eval()
    with torch.no_grad():
        z = m.forward_logits(*batch(T, np.arange(8))).numpy()
        w = m.wide(torch.from_numpy(T["profile"])).numpy()
    np.testing.assert_allclose(z, w, rtol=0, atol=1e-7)

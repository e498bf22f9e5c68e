"""The CUDA path (run where a GPU is present; skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import w2v

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
MOBY = str(Path(__file__).resolve().parent.parent / "corpora" / "moby_dick.txt.gz")


@pytest.mark.parametrize("model, hs", [("sg", False), ("cbow", False), ("sg", True)])
def test_cuda_training_lowers_the_loss_and_returns_cpu_vectors(tmp_path, model, hs):
    m = w2v.train([MOBY], out=str(tmp_path), model=model, hs=hs, epochs=2, device="cuda",
                  progress=False, tensorboard=False, evaluate=False)
    assert m.params.input.device.type == "cpu" and torch.isfinite(m.params.input).all()
    assert m.stats["epoch_losses"][1] < m.stats["epoch_losses"][0]
    assert (tmp_path / "model.pt").exists()

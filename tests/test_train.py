"""fairgap_utils.train: the training loop, optimizers, schedules, prediction helpers, determinism."""
from __future__ import annotations

import copy
import dataclasses
import io
import math

import pytest
import torch
from torch import nn

from fairgap_utils import data as D
from fairgap_utils.config import TrainConfig
from fairgap_utils.models import create_model
from fairgap_utils.train import (accuracy, epochs_steps, fit, make_optimizer, make_scheduler, predict, prepare,
                                 seed_everything, train_supervised)


PALETTE = torch.tensor([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                        [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128]]).float()


@pytest.fixture(scope="module")
def task():
    """200 images; the class is the colour (plus noise): learnable in a few epochs."""
    g = torch.Generator().manual_seed(5)
    y = torch.arange(10).repeat_interleave(20)
    x = PALETTE[y][:, :, None, None] + 25 * torch.randn(len(y), 3, 32, 32, generator=g)
    return x.clamp(0, 255).to(torch.uint8), y


CFG = TrainConfig(epochs=4, batch_size=40, lr=0.1, augment=True)


def _train(task, seed, arch="resnet_tiny", cfg=CFG):
    seed_everything(seed)
    model = create_model(arch)
    log = train_supervised(model, *task, cfg, seed=seed)
    return model, log


def test_train_supervised_learns_an_easy_task(task):
    x, y = task
    seed_everything(0)
    untrained_acc = accuracy(create_model("resnet_tiny"), x, y)
    cfg = dataclasses.replace(CFG, epochs=6)
    model, log = _train(task, 0, cfg=cfg)
    losses = log["loss_per_epoch"]
    assert len(losses) == cfg.epochs and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.3 * losses[0]
    assert accuracy(model, x, y) > max(60.0, untrained_acc + 30)
    assert isinstance(log["train_time_s"], float)      # its value: test_method_terms.py, with a fake clock
    assert not model.training


def test_same_seed_same_weights(task):
    a, log_a = _train(task, 3)
    b, log_b = _train(task, 3)
    c, log_c = _train(task, 4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert log_a["loss_per_epoch"] == log_b["loss_per_epoch"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    x, y = task
    assert torch.equal(predict(a, x), predict(b, x))


def test_adamw_cosine_vit_is_deterministic(task):
    cfg = TrainConfig(epochs=2, batch_size=50, optimizer="adamw", lr=3e-3, weight_decay=0.05, schedule="cosine",
                      augment=False, label_smoothing=0.1)
    a, log_a = _train(task, 1, "vit_micro", cfg)
    b, log_b = _train(task, 1, "vit_micro", cfg)
    assert log_a["loss_per_epoch"] == log_b["loss_per_epoch"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_make_optimizer_skips_frozen_parameters():
    m = create_model("resnet_tiny")
    for p in m.net.fc.parameters():
        p.requires_grad_(False)
    opt = make_optimizer(m.parameters(), "sgd", lr=0.05, weight_decay=1e-3)
    params = opt.param_groups[0]["params"]
    assert len(params) == sum(1 for p in m.parameters() if p.requires_grad)
    assert all(p is not m.net.fc.weight for p in params)
    g = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and g["lr"] == 0.05 and g["momentum"] == 0.9 and g["nesterov"]
    assert g["weight_decay"] == 1e-3
    assert isinstance(make_optimizer(m.parameters(), "adamw", lr=1e-3), torch.optim.AdamW)
    assert make_optimizer(m.parameters(), "sgd", momentum=0.0).param_groups[0]["nesterov"] is False


@pytest.mark.parametrize("arch, optimizer", [("resnet_tiny", "sgd"), ("vit_micro", "adamw")])
def test_the_multi_tensor_step_trains_the_same_weights_as_the_per_tensor_loop(arch, optimizer):
    """make_optimizer's foreach step is a speed-up only: the committed results, trained with the loop, stay
    what this code computes (bit for bit, after a few steps of training)."""
    torch.manual_seed(0)
    models = [create_model(arch) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    loop = (torch.optim.SGD(models[0].parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True,
                            foreach=False) if optimizer == "sgd"
            else torch.optim.AdamW(models[0].parameters(), lr=0.05, weight_decay=5e-4, foreach=False))
    foreach = make_optimizer(models[1].parameters(), optimizer, lr=0.05)
    assert foreach.defaults["foreach"] is True and type(foreach) is type(loop)
    for model, opt in zip(models, (loop, foreach)):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


def test_schedules():
    p = [nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.3)
    sched = make_scheduler(opt, "onecycle", 20, 0.3)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(0.3) and lrs.index(max(lrs)) in (4, 5)   # pct_start 0.25
    assert lrs[0] < 0.05 and lrs[-1] < 0.01
    opt = torch.optim.SGD(p, lr=0.3)
    cos = make_scheduler(opt, "cosine", 10, 0.3)
    for _ in range(10):
        opt.step()
        cos.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    assert make_scheduler(torch.optim.SGD(p, lr=0.1), "constant", 10, 0.1) is None


def test_fit_keeps_frozen_modules_in_eval_mode(task):
    x, y = task
    seed_everything(0)
    m = create_model("resnet_tiny")
    stem_bn = m.net.bn1
    before = stem_bn.running_mean.clone()
    for p in m.parameters():
        p.requires_grad_(False)
    for p in m.net.fc.parameters():
        p.requires_grad_(True)
    opt = make_optimizer(m.parameters(), "sgd", lr=0.1)
    calls = []
    hist = fit(m, 2, lambda e: D.batches(x, y, 50), lambda mod, xb, yb, e: nn.functional.cross_entropy(mod(xb), yb),
               opt, frozen=[stem_bn], after_step=lambda: calls.append(1))
    assert torch.equal(stem_bn.running_mean, before)
    assert not torch.equal(m.net.layer1[0].bn1.running_mean, torch.zeros(8))   # not frozen: it moved
    assert len(hist) == 2 and len(calls) == 2 * 4
    assert not m.training


def test_predict_and_accuracy():
    seed_everything(0)
    m = create_model("resnet_tiny")
    x = torch.randint(0, 256, (13, 3, 32, 32), dtype=torch.uint8)
    logits = predict(m, x, batch_size=5)
    assert logits.shape == (13, 10) and logits.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(logits, m(D.to_float(x)), atol=1e-5)
    y = logits.argmax(1)
    assert accuracy(m, x, y) == 100.0
    assert accuracy(m, x, (y + 1) % 10) == 0.0
    assert math.isnan(accuracy(m, x[:0], y[:0]))
    assert predict(m, x[:0]).numel() == 0                 # no images, no logits


def test_epochs_steps():
    assert epochs_steps(100, 10) == 10 and epochs_steps(101, 10) == 11 and epochs_steps(9, 10) == 1


def test_prepare_puts_convolutions_in_channels_last_and_keeps_the_function():
    seed_everything(0)
    plain = create_model("resnet_tiny").eval()
    prepared = prepare(copy.deepcopy(plain), "cpu")
    assert prepared.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(predict(prepared, x), predict(plain, x), atol=1e-4)


def test_fit_returns_the_image_weighted_mean_loss_per_epoch_and_steps_per_batch():
    """Batches of 3, 3 and 1 images with losses 1, 2 and 9 (by construction): the epoch's loss is
    (3 * 1 + 3 * 2 + 1 * 9) / 7, not the mean over batches; one optimizer step, one scheduler step and one
    after_step call per batch."""
    w = nn.Parameter(torch.zeros(()))
    model = nn.Sequential(nn.Linear(1, 1))
    model.w = w
    values = {3: iter([1.0, 2.0]), 1: iter([9.0])}
    x, y = torch.zeros(7, 1, 1, 1), torch.zeros(7, dtype=torch.long)

    def batches(epoch):
        return ((x[i:i + 3], y[i:i + 3]) for i in range(0, 7, 3))

    def loss_fn(m, xb, yb, epoch):
        return w * 0 + next(values[len(xb)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    steps = []
    hist = fit(model, 1, batches, loss_fn, opt, sched, after_step=lambda: steps.append(opt.param_groups[0]["lr"]))
    assert hist == [pytest.approx((3 * 1 + 3 * 2 + 1 * 9) / 7)]
    assert steps == pytest.approx([0.05, 0.025, 0.0125])        # the scheduler steps before after_step, per batch


def test_autocast_is_bf16_on_cuda_and_nothing_on_a_cpu():
    import warnings

    from fairgap_utils.train import autocast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # "CUDA is not available": only the settings are read
        ctx = autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
    assert not isinstance(autocast(torch.device("cpu")), torch.autocast)


def test_progress_bars_follow_fairgap_progress(monkeypatch):
    from fairgap_utils.train import progress
    monkeypatch.setenv("FAIRGAP_PROGRESS", "0")
    assert progress(range(2)).disable
    monkeypatch.setenv("FAIRGAP_PROGRESS", "1")
    assert not progress(range(2), file=io.StringIO()).disable
    monkeypatch.delenv("FAIRGAP_PROGRESS")
    assert not progress(range(2), file=io.StringIO()).disable          # on unless turned off

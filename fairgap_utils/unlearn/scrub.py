"""SCRUB (Kurmanji et al., NeurIPS 2023): a student moves away from the teacher on D_f.

Teacher: the frozen original. Student: starts from it. For the first `msteps` epochs a
max-step maximizes KL(teacher || student) on D_f; every epoch a min-step minimizes
gamma * CE + alpha * KL on D_r. KL at temperature T, scaled by T^2 as in the official code.
As in the official large-scale setting: no augmentation, forget batches of
`forget_batch_size` (512) and retain batches of `batch_size` (256).
"""
import torch
from torch.nn import functional as F

from .common import loader, sgd_finetune

TITLE = "SCRUB (teacher-student)"
SHORT = "SCRUB"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(epochs=3, msteps=2, lr=5e-4, batch_size=256, forget_batch_size=512, weight_decay=5e-4,
                momentum=0.9, schedule="constant", T=4.0, gamma=0.99, alpha=0.001)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 2, "msteps": 1}, "cpu": {"epochs": 3, "lr": 5e-3, "batch_size": 128}, "paper": {}}


def kl_teacher_student(student_logits, teacher_logits, T):
    return F.kl_div(F.log_softmax(student_logits / T, 1), F.softmax(teacher_logits / T, 1),
                    reduction="batchmean") * T * T


def unlearn(model, split, hp, ctx):
    teacher = ctx.original.eval()
    forget, _ = loader(split.x_forget, split.y_forget, dict(hp, batch_size=hp["forget_batch_size"]), ctx.seed,
                       augment=False)
    retain, _ = loader(split.x_retain, split.y_retain, hp, ctx.seed + 1, augment=False)
    T, gamma, alpha = hp["T"], hp["gamma"], hp["alpha"]
    state = {"phase": "min"}
    log = {"max_loss": [], "min_loss": []}

    def epoch_batches(epoch):
        """Max-steps on D_f (first msteps epochs), then min-steps on D_r; `state` says which."""
        if epoch < hp["msteps"]:
            state["phase"] = "max"
            yield from forget(epoch)
        state["phase"] = "min"
        yield from retain(epoch)

    def loss_fn(m, x, y, epoch):
        with torch.no_grad():
            t = teacher(x)
        s = m(x)
        kl = kl_teacher_student(s, t, T)
        loss = -kl if state["phase"] == "max" else gamma * F.cross_entropy(s, y) + alpha * kl
        log[f"{state['phase']}_loss"].append(loss.detach())  # read back once at the end, not per step
        return loss

    loss = sgd_finetune(model, dict(hp, schedule="constant"), hp["epochs"], epoch_batches, 1, loss_fn, desc="SCRUB")
    return model, {"loss_per_epoch": loss, **{k: torch.stack(v).float().tolist() if v else [] for k, v in log.items()}}

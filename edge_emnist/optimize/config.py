"""What `prune` and `qat` take: the pruning target and the fine-tuning around it. No TensorFlow here, so the
command line is built (and a bad value refused) before any heavy import."""

from __future__ import annotations

from dataclasses import dataclass

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.options import open_fraction, option, positive_float, positive_int

SCHEDULES = ("polynomial", "constant")
CRITERIA = ("l1", "bn")  # structured pruning: which filters go (optimize/structured.py scores them)
FINETUNE_SCHEDULES = ("constant", "cosine")  # the keras3.LR_SCHEDULES rows a 2-8 epoch fine-tuning can use


def parse_m_by_n(text: str) -> tuple[int, int]:
    try:
        m, n = (int(part) for part in text.split(":"))
    except ValueError:
        raise EdgeEmnistError(f"--m-by-n wants M:N such as 2:4, got {text!r}") from None
    return m, n


@dataclass
class PruneConfig:
    sparsity: float = option(0.5, type=open_fraction, help="target zero fraction")
    schedule: str = option("polynomial", choices=SCHEDULES,
                           help="polynomial ramps to the target over 3/4 of fine-tuning; constant prunes at once")
    # structured: keep m of every n weights (2:4); the sparsity it means (1 - m/n) replaces `sparsity`
    m_by_n: tuple[int, int] | str | None = option(None, metavar="M:N",
                                                  help="2:4-style sparsity, e.g. 2:4 (overrides --sparsity)")
    # structured pruning: remove this share of the filters of every prunable layer and rebuild a smaller model
    structured: float | None = option(None, type=open_fraction, metavar="SHARE",
                                      help="remove whole filters instead of single weights: SHARE of every "
                                           "prunable layer's filters (0.5 halves them); fewer MACs, so faster: "
                                           "measure how much with bench")
    criterion: str = option("l1", choices=CRITERIA,
                            help="--structured: which filters go first: l1 = smallest kernel L1 norm, bn = smallest "
                                 "batch-norm scale after the filter (L1 where there is none)")

    def __post_init__(self) -> None:
        if isinstance(self.m_by_n, str):
            self.m_by_n = parse_m_by_n(self.m_by_n)
        if self.m_by_n:
            self.m_by_n = tuple(self.m_by_n)
            if 0 < self.m_by_n[0] < self.m_by_n[1]:
                self.sparsity = 1 - self.m_by_n[0] / self.m_by_n[1]

    def validate(self) -> None:
        if self.structured is not None:
            if self.m_by_n:
                raise EdgeEmnistError("--structured removes whole filters; it does not combine with --m-by-n")
            if not 0 < self.structured < 1:
                raise EdgeEmnistError(f"--structured must be between 0 and 1 (exclusive), got {self.structured}")
            if self.criterion not in CRITERIA:
                raise EdgeEmnistError(f"criterion must be one of {', '.join(CRITERIA)}")
        if self.m_by_n and not 0 < self.m_by_n[0] < self.m_by_n[1]:
            raise EdgeEmnistError(f"--m-by-n needs 0 < m < n, got {self.m_by_n[0]}:{self.m_by_n[1]}")
        if not 0 < self.sparsity < 1:
            raise EdgeEmnistError(f"sparsity must be between 0 and 1 (exclusive), got {self.sparsity}")
        if self.schedule not in SCHEDULES:
            raise EdgeEmnistError(f"schedule must be one of {', '.join(SCHEDULES)}")


@dataclass
class FinetuneConfig:
    """The fine-tuning that prune and QAT do on a finished run."""

    epochs: int = option(2, help="fine-tuning epochs (pruning, or QAT alone)")
    lr: float = option(1e-4, type=positive_float, help="fine-tuning learning rate")
    lr_schedule: str = option("constant", choices=FINETUNE_SCHEDULES,
                              help="fine-tuning LR: constant, or cosine decay to 0 over each stage's epochs")
    qat_epochs: int | None = option(None, type=positive_int, help="QAT epochs after pruning (default: --epochs)")
    ranges_only: bool = option(False, help="QAT learns only the int8 activation ranges (moving averages over the "
                                           "training batches); weights and batch-norm statistics stay as trained: "
                                           "a better calibration than export's for a model trained to convergence, "
                                           "whose weights QAT fine-tuning can only disturb")

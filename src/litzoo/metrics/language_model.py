"""Perplexity over a whole split: exp(total negative log-likelihood / total tokens), gathered across ranks.

Perplexity is not averaged over batches (a mean of per-batch perplexities overweights short and
hard batches): every rank sums the NLL of the targets it scored and counts them, in float64, and
`compute()` adds the sums over ranks before dividing once. The neural cache (Grave et al. 2017)
is here too, as a function over one window of hidden states, because it changes the probability
of each target and so belongs to the metric's inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class PerplexityMeter:
    """Sums of target NLL and target counts; `compute()` -> `{"ppl", "loss", "tokens"}` over all ranks."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.nll = torch.zeros((), dtype=torch.float64, device=self.device)
        self.count = torch.zeros((), dtype=torch.float64, device=self.device)

    def update(self, nll_sum: torch.Tensor, count: torch.Tensor | int) -> None:
        """Add a batch: the *sum* of its targets' NLL (nats) and how many targets that sum covers."""
        self.nll += nll_sum.detach().to(self.device, torch.float64)
        self.count += torch.as_tensor(count, device=self.device, dtype=torch.float64)

    def totals(self) -> tuple[float, float]:
        """`(total NLL, total tokens)` over every rank (a collective under DDP: all ranks must call it)."""
        both = torch.stack([self.nll, self.count])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(both)
        return float(both[0]), float(both[1])

    def compute(self) -> dict[str, float]:
        nll, count = self.totals()
        loss = nll / count if count else float("nan")
        return {"ppl": math.exp(loss) if count else float("nan"), "loss": loss, "tokens": count}


def token_nll(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(sum of NLL, count)` of `targets` under `logits` (`[..., V]`), over the `mask`ed positions only."""
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none"
    )
    if mask is None:
        return losses.sum(), torch.tensor(losses.numel(), device=losses.device)
    keep = mask.reshape(-1)
    return losses[keep].sum(), keep.sum()


def cache_target_probabilities(
    vocab_probs: torch.Tensor,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    history: tuple[torch.Tensor, torch.Tensor] | None,
    window: int,
    theta: float,
    lambdas: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The neural cache's probability of each target in a window, and the updated cache.

    `vocab_probs` `[T, B]` are the model's probabilities of the targets, `hidden` `[T, B, H]` the last
    layer's outputs and `targets` `[T, B]`; `history` the cached `(hidden [P, B, H], next word [P, B])`
    of the previous windows. Target `t` gets `(1 - lambdas) * p_vocab + lambdas * p_cache`, where
    `p_cache(w)` is the softmax of `theta * h_t . h_j` over the (at most `window`) cached positions
    `j < t` whose next word is `w`; with nothing cached yet it keeps `p_vocab`. Returns the mixed
    probabilities `[T, B]` and the last `window` entries of the cache.
    """
    steps = hidden.shape[0]
    keys = hidden if history is None else torch.cat([history[0], hidden])
    words = targets if history is None else torch.cat([history[1], targets])
    past = keys.shape[0] - steps
    scores = theta * torch.einsum("tbh,sbh->bts", hidden.float(), keys.float())  # [B, T, P + T]
    position = torch.arange(keys.shape[0], device=hidden.device)
    now = past + torch.arange(steps, device=hidden.device)[:, None]
    visible = (position[None, :] < now) & (position[None, :] >= now - window)  # [T, P + T]
    scores = scores.masked_fill(~visible, float("-inf"))
    attention = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # rows with nothing cached: all zero
    same_word = words.t()[:, None, :] == targets.t()[:, :, None]  # [B, T, P + T]
    cache_probs = (attention * same_word).sum(-1).t()  # [T, B]
    has_cache = visible.any(-1)[:, None]  # [T, 1]
    mixed = torch.where(has_cache, (1.0 - lambdas) * vocab_probs + lambdas * cache_probs, vocab_probs)
    return mixed, (keys[-window:].detach(), words[-window:].detach())

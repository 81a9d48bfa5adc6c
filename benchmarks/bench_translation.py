"""Translation through litzoo versus a plain PyTorch loop, side by side: training tokens/s; batched
beam search versus one sentence at a time: sentences/s with the same outputs.

- **training throughput**: both sides train the small Transformer (``model=transformer_small``:
  3+3 layers, d 128, pre-norm, shared embeddings) on the same token-budget batches of the embedded
  synthetic pair (``data=toy_translation``: the same datamodule, SentencePiece vocabulary and
  TokenBudgetSampler plan, 2048 padded tokens per batch) with the same AdamW (betas 0.9/0.98, eps 1e-9),
  inverse-sqrt warmup, label-smoothed cross-entropy (0.1) and gradient clipping (1.0), in one process on
  one thread (``torch.set_num_threads(1)``). Every step is timed end to end (from the end of one step to
  the end of the next) after ``--warmup`` untimed steps, for ``--steps`` steps. The litzoo side is the
  real ``train.py task=translation`` path (Hydra config, ``litzoo.platform.runner.run`` with its
  Trainer, task, datamodule, logger, callbacks with rolling checkpoints, run record); the plain side a
  ``DataLoader`` over the same batch plan and a hand-written loop. Rounds alternate which side goes
  first so that a change in the machine's load hits both. Tokens are the target subwords (with
  ``</s>``) the loss is taken over, fairseq's ``wps``.
- **decoding**: the test split's first ``--decode-sentences`` sources translated with beam
  ``--beam`` by litzoo's batched beam search (``--decode-batch`` sentences per call, sorted by
  length) and one sentence at a time (the same search with a batch of one): sentences/s, whether the
  outputs are identical, and their sacreBLEU. The model is the one of ``--run-dir`` (a finished
  ``task=translation`` run) or else the plain side's model after its last timed round.
  ``transformers``' ``generate`` is not compared: no Hugging Face class holds this model's
  pre-norm, sqrt(d)-scaled, fully tied layout without a conversion that is itself the thing measured.

    python benchmarks/bench_translation.py                         # 5 warm-up + 40 timed steps, 4 rounds
    python benchmarks/bench_translation.py --quick                 # 3 + 10 steps, 2 rounds, 40 sentences
    python benchmarks/bench_translation.py --run-dir outputs/translation/transformer_small/<time>
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from litzoo.datamodules.translation.datamodule import collate_pairs  # noqa: E402
from litzoo.metrics.bleu import corpus_scores  # noqa: E402
from litzoo.models.translation import TransformerSeq2Seq  # noqa: E402
from litzoo.platform.registry import build  # noqa: E402
from litzoo.tasks.translation import InverseSqrtFactor, label_smoothed_nll  # noqa: E402
from litzoo.text.beam_search import beam_search  # noqa: E402
from litzoo.text.subword_vocab import BOS, EOS, PAD  # noqa: E402

SEED = 42
# conf/model/transformer_small.yaml and its recipe block; conf/task/translation.yaml.
ARCH = dict(d_model=128, heads=4, ffn_dim=256, encoder_layers=3, decoder_layers=3, dropout=0.1, pre_norm=True)
LR, WARMUP, CLIP, SMOOTHING, MAX_LEN_A, MAX_LEN_B = 2.0e-3, 200, 1.0, 0.1, 1.2, 10


class StepTimer(pl.Callback):
    """Records the time at the end of every training step (the litzoo side's step clock)."""

    ends: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


TIMER = StepTimer()


def step_timer() -> StepTimer:
    return TIMER


def compose(overrides: list[str], run_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
    return cfg


def base_overrides(data_dir: Path, run_dir: Path) -> list[str]:
    return ["task=translation", f"paths.data_dir={data_dir}", f"paths.output_dir={run_dir}", f"seed={SEED}"]


def the_data(data_dir: Path):
    """The datamodule `train.py task=translation` builds (same files, vocabulary and sampler plan)."""
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-mt-data-"))
    cfg = compose(base_overrides(data_dir, run_dir), run_dir)
    datamodule = build(cfg.data, seed=SEED)
    datamodule.setup("fit")
    return datamodule


def timed(ends: list[float], warmup: int, steps: int) -> list[float]:
    assert warmup >= 1 and len(ends) >= warmup + steps, (len(ends), warmup, steps)
    return [ends[i] - ends[i - 1] for i in range(warmup, warmup + steps)]


def plain_loop(datamodule, warmup: int, steps: int) -> tuple[list[float], list[int], TransformerSeq2Seq]:
    """A hand-written loop over the same batches; returns (step durations, tokens per step, model)."""
    torch.manual_seed(SEED)
    src_vocab, tgt_vocab = datamodule.vocabs()
    model = TransformerSeq2Seq(
        len(src_vocab), len(tgt_vocab), **ARCH, max_positions=datamodule.max_positions + 12
    )
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "norm" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "norm" not in n)]
    groups = [{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.98), eps=1e-9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, InverseSqrtFactor(WARMUP))
    sampler = datamodule.batch_sampler("train")
    sampler.set_epoch(0)
    plan = list(iter(sampler))[: warmup + steps + 1]
    loader = torch.utils.data.DataLoader(
        datamodule.dataset("train"), batch_sampler=plan, collate_fn=collate_pairs
    )
    model.train()
    ends, tokens = [time.perf_counter()], []
    for batch in loader:
        if len(tokens) == warmup + steps:
            break
        logits = model(batch["src"], batch["tgt_in"])
        loss, _ = label_smoothed_nll(logits, batch["tgt_out"], SMOOTHING)
        n = int((batch["tgt_out"] != PAD).sum())
        optimizer.zero_grad(set_to_none=True)
        (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        schedule.step()
        (loss / n).item()  # the platform logs the loss every step, which syncs the same way
        tokens.append(n)
        ends.append(time.perf_counter())
    return timed(ends[1:], warmup, steps), tokens[warmup:], model


def litzoo_run(data_dir: Path, warmup: int, steps: int, extra: list[str]) -> list[float]:
    """`train.py task=translation` for warmup + steps steps, no validation; returns step durations."""
    from litzoo.platform.runner import RunContext, run

    TIMER.ends = []
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-mt-"))
    overrides = [
        *base_overrides(data_dir, run_dir),
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={warmup + steps}",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "test=false",
        *extra,
    ]
    cfg = compose(overrides, run_dir)
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    # The timer lives in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    return timed(TIMER.ends, warmup, steps)


@torch.no_grad()
def decode(net: TransformerSeq2Seq, sources: list[list[int]], beam: int, batch: int) -> tuple[list, float]:
    """Beam-search translations of `sources` (ids without </s>), `batch` at a time, length-sorted;
    returns (ids in input order, seconds)."""
    net.eval()
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[list[int] | None] = [None] * len(sources)
    start = time.perf_counter()
    for first in range(0, len(order), batch):
        rows = order[first : first + batch]
        chunk = [sources[i] + [EOS] for i in rows]
        src = torch.full((len(chunk), max(map(len, chunk))), PAD, dtype=torch.long)
        for r, ids in enumerate(chunk):
            src[r, : len(ids)] = torch.tensor(ids)
        max_len = (MAX_LEN_A * (src != PAD).sum(1).float() + MAX_LEN_B).long()
        max_len = max_len.clamp(max=net.positions.size(0) - 3)
        found = beam_search(
            net.step, net.reorder, net.start_state(src, beam), len(rows), beam, BOS, EOS, max_len
        )
        for i, ids in zip(rows, found, strict=True):
            out[i] = ids
    return out, time.perf_counter() - start


def tokens_per_s(times: list[float], tokens: list[int]) -> float:
    return statistics.mean(tokens) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per run (5; --quick: 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (40; --quick: 10)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (4; --quick: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "litzoo-bench-data"))
    parser.add_argument(
        "--litzoo-override", action="append", default=[], help="extra train.py override (repeatable)"
    )
    parser.add_argument("--run-dir", help="decode with this finished task=translation run's model")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--decode-batch", type=int, default=32)
    parser.add_argument(
        "--decode-sentences", type=int, default=None, help="test sentences (200; --quick: 40)"
    )
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 5)
    steps = args.steps if args.steps is not None else (10 if args.quick else 40)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 4)
    sentences = args.decode_sentences or (40 if args.quick else 200)
    data_dir = Path(args.data_dir)
    datamodule = the_data(data_dir)
    model = None
    if not args.skip_throughput:
        plain_loop(datamodule, warmup, steps)  # warm the process up (oneDNN kernels), untimed
        sides = ("plain PyTorch loop", "litzoo (train.py path)")
        times: dict[str, list[list[float]]] = {side: [] for side in sides}
        tokens: list[int] = []
        for round_ in range(rounds):
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                if side == sides[0]:
                    durations, tokens, model = plain_loop(datamodule, warmup, steps)
                    times[side].append(durations)
                else:
                    times[side].append(litzoo_run(data_dir, warmup, steps, args.litzoo_override))
            now = [tokens_per_s(times[side][-1], tokens) for side in sides]
            print(
                f"round {round_ + 1}/{rounds}: plain {now[0]:.0f}, litzoo {now[1]:.0f} target tokens/s "
                f"(ratio {now[1] / now[0]:.3f})",
                flush=True,
            )
        vocab = len(datamodule.vocabs()[1])
        print(
            f"\ntransformer_small (vocabulary {vocab}), token-budget batches of {datamodule.batch_sampler('train').max_tokens}"
            f" padded tokens, {statistics.mean(tokens):.0f} target tokens/step on average; {steps} timed steps after "
            f"{warmup} warm-up per run, {rounds} alternating round(s), torch threads={torch.get_num_threads()}"
            + (f", litzoo overrides {args.litzoo_override}" if args.litzoo_override else "")
        )
        print(f"{'side':<26}{'target tokens/s (median step)':>32}{'per round':>36}")
        for side in sides:
            everything = [t for run in times[side] for t in run]
            per_round = ", ".join(f"{tokens_per_s(run, tokens):.0f}" for run in times[side])
            print(f"{side:<26}{tokens_per_s(everything, tokens):>32.0f}{per_round:>36}")
        ratios = [statistics.median(p) / statistics.median(o) for p, o in zip(*(times[s] for s in sides))]
        overall = statistics.median([t for r in times[sides[0]] for t in r]) / statistics.median(
            [t for r in times[sides[1]] for t in r]
        )
        print(
            f"ratio litzoo / plain: {overall:.3f} (all steps); median of the rounds' ratios "
            f"{statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
    if args.run_dir:
        import litzoo

        task = litzoo.load(args.run_dir)
        net, (src_vocab, tgt_vocab) = task.eval_net, task._vocabs()
        where = f"the model of {args.run_dir}"
    elif model is not None:
        net, (src_vocab, tgt_vocab) = model, datamodule.vocabs()
        where = f"the plain loop's model after {warmup + steps} steps (undertrained: long outputs)"
    else:
        return
    text = datamodule.texts("test")
    sources = [src_vocab.encode(s)[: datamodule.max_positions - 1] for s in text.source[:sentences]]
    references = text.target[:sentences]
    batched, batched_s = decode(net, sources, args.beam, args.decode_batch)
    alone, alone_s = decode(net, sources, args.beam, 1)
    bleu = corpus_scores([tgt_vocab.decode(ids) for ids in batched], references)
    same = sum(a == b for a, b in zip(batched, alone, strict=True))
    print(f"\nDecoding {len(sources)} test sentences, beam {args.beam}, with {where}:")
    print(f"  batched ({args.decode_batch} per call)  {len(sources) / batched_s:8.1f} sentences/s")
    print(f"  one at a time           {len(sources) / alone_s:8.1f} sentences/s")
    print(
        f"  speed-up {alone_s / batched_s:.2f}x; identical outputs: {same}/{len(sources)}; BLEU {bleu['bleu']:.2f}"
    )


if __name__ == "__main__":
    main()

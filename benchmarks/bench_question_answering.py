"""Question answering, side by side on the same windows of the embedded SQuAD-format set.

1. **Evaluation** throughput (questions/s) with length-bucketed vs unsorted (sequential) batches of
   windows: same model, same data, the padding fraction of each, and whether both give the same
   answers (they must: decoding looks only at a window's real tokens).
2. **Training** throughput (windows/s): the real ``train.py task=question_answering`` path (the
   config composed by Hydra, ``litzoo.platform.runner.run`` with its Trainer, task, datamodule,
   sampler, logger, callbacks -- rolling checkpoints included -- and run record) against the loop
   people write with transformers: ``AutoModelForQuestionAnswering`` (its own loss), a shuffled
   ``DataLoader`` with ``DataCollatorWithPadding``, AdamW, ``get_linear_schedule_with_warmup``,
   gradient clipping at 1. Both read the same windows (the datamodule's training windows), the same
   batch size, learning rate and steps, one process, ``torch.set_num_threads(--threads)``. Every step
   is timed from the end of the step before (data, forward, backward, clipping, optimizer, logging,
   callbacks) after ``--warmup`` untimed steps; ``--rounds`` rounds alternate which side goes first,
   so a change in the machine's load hits both. By default litzoo uses random batches
   (``data.sampler=null``) like the plain loop, so both pad alike; ``--bucketed`` keeps litzoo's
   length bucketing (less padding: part 1 shows how much).
3. With ``--f1``: the official SQuAD 2.0 F1 of both sides after the same training steps, each scored
   on the whole dev split with the same decoding (litzoo's val/f1 of the run; the plain model's
   windows decoded by ``litzoo.text.span_decoding`` and scored by ``litzoo.metrics.squad``).

    python benchmarks/bench_question_answering.py                      # tiny random BERT (fast)
    python benchmarks/bench_question_answering.py --model minilm_l6 --f1 --steps 60   # the bundled MiniLM
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

SEED, LR, CLIP, WARMUP_RATIO = 42, 1.0e-4, 1.0, 0.1
TOY = {"num_train": 60, "num_dev": 20, "generator_seed": 0}


class StepTimer(pl.Callback):
    """Records the time at the end of every training step (the litzoo side's step clock)."""

    ends: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


TIMER = StepTimer()


def step_timer() -> StepTimer:
    return TIMER


def step_times(ends: list[float], warmup: int, steps: int) -> list[float]:
    """Durations of steps warmup .. warmup + steps - 1, each from the end of the step before it."""
    assert warmup >= 1 and len(ends) >= warmup + steps, (len(ends), warmup, steps)
    return [ends[i] - ends[i - 1] for i in range(warmup, warmup + steps)]


def tiny_bert(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 128) with MiniLM's real uncased WordPiece tokenizer."""
    from transformers import BertConfig, BertModel

    from litzoo.text.pretrained import load_tokenizer, minilm_l6_path

    tokenizer = load_tokenizer(minilm_l6_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def resolve_model(name: str) -> str:
    from litzoo.text.pretrained import minilm_l6_path

    return str(minilm_l6_path()) if name == "minilm_l6" else name


def datamodule(root: Path, model: str, batch_size: int):
    from litzoo.datamodules.question_answering.datamodule import ToySquadDataModule

    dm = ToySquadDataModule(
        root=root,
        max_seq_length=128,
        doc_stride=32,
        max_query_length=32,
        tokenizer=model,
        batch_size=batch_size,
        **TOY,
    )
    dm.setup()
    return dm


def evaluation(dm, model: str) -> None:
    from litzoo.data.samplers import FixedBucketSampler, SequentialBatchSampler
    from litzoo.tasks.question_answering import QuestionAnsweringTask, SquadMetrics
    from litzoo.text.span_decoding import window_candidates

    task = QuestionAnsweringTask(
        {"_target_": "litzoo.models.question_answering.create_span_model", "pretrained": model},
        dm.info(),
        {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": LR},
    ).eval()
    collate, lengths, examples = dm.collate_fn, dm.lengths("val"), dm.examples("val")
    print(f"1. evaluation ({len(examples)} dev questions, {len(lengths)} windows, batches of 32):")
    answers = {}
    for name, sampler in (
        ("bucketed", FixedBucketSampler(lengths, 32, num_buckets=8, bucket_scheme="linear")),
        ("unsorted", SequentialBatchSampler(len(lengths), 32)),
    ):
        scorer = SquadMetrics(examples, dm.squad_version)
        real = padded = 0
        begin = time.perf_counter()
        with torch.no_grad():
            for batch_indices in sampler:
                batch = collate([dm.val_set[i] for i in batch_indices])
                real += int(batch["attention_mask"].sum())
                padded += batch["attention_mask"].numel()
                start, end = task(batch)
                scorer.update(
                    batch["window_index"].tolist(),
                    batch["example_index"].tolist(),
                    window_candidates(start, end, batch["offsets"], batch["attention_mask"]),
                )
        scorer.compute()
        seconds = time.perf_counter() - begin
        answers[name] = {q: a.text for q, a in scorer.answers.items()}
        print(f"   {name}: {len(examples) / seconds:.1f} questions/s, padding {1 - real / padded:.3f}")
    print(f"   same answers: {answers['bucketed'] == answers['unsorted']}", flush=True)


def plain_loop(dm, model: str, batch_size: int, warmup: int, steps: int) -> tuple[list[float], object]:
    """The transformers loop over the datamodule's training windows; (timed step durations, the model)."""
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model)
    keys = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")
    features = []
    for i in range(len(dm.train_set)):
        sample = dm.train_set[i]
        features.append({k: sample[k].tolist() if hasattr(sample[k], "tolist") else sample[k] for k in keys})
    loader = torch.utils.data.DataLoader(
        features,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=DataCollatorWithPadding(tokenizer),
        generator=torch.Generator().manual_seed(SEED),
    )
    net = AutoModelForQuestionAnswering.from_pretrained(model).train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in net.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in net.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LR)
    total = warmup + steps
    schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP_RATIO * total), total)
    ends, step = [time.perf_counter()], 0
    while step < total:
        for batch in loader:
            loss = net(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()  # the platform logs the loss every step, which syncs the same way
            ends.append(time.perf_counter())
            step += 1
            if step == total:
                break
    return step_times(ends[1:], warmup, steps), net


def plain_f1(dm, net) -> float:
    from litzoo.data.samplers import SequentialBatchSampler
    from litzoo.tasks.question_answering import SquadMetrics
    from litzoo.text.span_decoding import window_candidates

    scorer = SquadMetrics(dm.examples("val"), dm.squad_version)
    net.eval()
    with torch.no_grad():
        for indices in SequentialBatchSampler(len(dm.val_set), 32):
            batch = dm.collate_fn([dm.val_set[i] for i in indices])
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            out = net(**inputs)
            scorer.update(
                batch["window_index"].tolist(),
                batch["example_index"].tolist(),
                window_candidates(
                    out.start_logits, out.end_logits, batch["offsets"], batch["attention_mask"]
                ),
            )
    return float(scorer.compute().metrics["f1"])


def litzoo_run(
    root: Path, model: str, batch_size: int, warmup: int, steps: int, validate: bool, extra: list[str]
) -> tuple[list[float], float | None]:
    """``train.py task=question_answering`` for warmup + steps steps; (timed step durations, val/f1)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import register_resolvers
    from litzoo.platform.runner import RunContext, run

    TIMER.ends = []
    register_resolvers()
    GlobalHydra.instance().clear()
    run_dir = Path(tempfile.mkdtemp(prefix="litzoo-bench-qa-"))
    overrides = [
        "task=question_answering",
        "model=hf_encoder",
        f"model.pretrained={model}",
        f"data.root={root}",
        *(f"data.{k}={v}" for k, v in TOY.items()),
        f"data.batch_size={batch_size}",
        f"optim.lr={LR}",
        f"sched.warmup_ratio={WARMUP_RATIO}",
        "trainer.max_epochs=-1",
        f"trainer.max_steps={warmup + steps}",
        f"trainer.limit_val_batches={1.0 if validate else 0}",
        "trainer.check_val_every_n_epoch=null",
        f"+trainer.val_check_interval={warmup + steps}",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "test=false",
        f"paths.output_dir={run_dir}",
        f"seed={SEED}",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.step_timer"}
    (run_dir / ".hydra").mkdir(parents=True)
    # The timer lives in this script, outside the trusted packages.
    run(cfg, RunContext(run_dir=run_dir, config_dirs=[ROOT / "conf"], overrides=["trust_config=true"]))
    f1 = None
    if validate:
        import csv

        with open(run_dir / "metrics.csv") as handle:
            f1 = [float(r["val/f1"]) for r in csv.DictReader(handle) if r.get("val/f1")][-1]
    return step_times(TIMER.ends, warmup, steps), f1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="checkpoint folder or minilm_l6 (default: a tiny random BERT)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per run (default 3)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--bucketed", action="store_true", help="litzoo keeps its length-bucketed batches")
    parser.add_argument("--f1", action="store_true", help="also dev F1 of both sides after the same steps")
    parser.add_argument("--skip-eval", action="store_true", help="skip part 1")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="litzoo-bench-qa-data-"))
    model = resolve_model(args.model) if args.model else str(tiny_bert(work / "bert"))
    root = work / "toy"
    dm = datamodule(root, model, args.batch_size)
    print(
        f"model {args.model or 'tiny random BERT'}; {len(dm.train_set)} training windows, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    if not args.skip_eval:
        evaluation(dm, model)
    extra = [] if args.bucketed else ["data.sampler=null"]
    plain_loop(dm, model, args.batch_size, 1, 2)  # warm the process up (oneDNN kernels), untimed
    sides = ("plain transformers loop", "litzoo (train.py path)")
    times: dict[str, list[list[float]]] = {side: [] for side in sides}
    print("2. training:")
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            if side == sides[0]:
                times[side].append(plain_loop(dm, model, args.batch_size, args.warmup, args.steps)[0])
            else:
                run_times, _ = litzoo_run(root, model, args.batch_size, args.warmup, args.steps, False, extra)
                times[side].append(run_times)
        plain_now, ours_now = (args.batch_size / statistics.median(times[s][-1]) for s in sides)
        print(
            f"   round {round_ + 1}/{args.rounds}: plain {plain_now:.1f}, litzoo {ours_now:.1f} windows/s "
            f"(ratio {ours_now / plain_now:.3f})",
            flush=True,
        )
    rates = {s: args.batch_size / statistics.median([t for r in times[s] for t in r]) for s in sides}
    for side in sides:
        print(f"   {side:<26}{rates[side]:8.1f} windows/s (median step over all rounds)")
    ratios = [statistics.median(p) / statistics.median(o) for p, o in zip(*(times[s] for s in sides))]
    print(
        f"   ratio litzoo / plain: {rates[sides[1]] / rates[sides[0]]:.3f} (all steps); median of the rounds' "
        f"ratios {statistics.median(ratios):.3f}; litzoo batches: {'bucketed' if args.bucketed else 'random'}"
    )
    if args.f1:
        total = args.warmup + args.steps
        _, net = plain_loop(dm, model, args.batch_size, 1, total - 1)
        _, ours = litzoo_run(root, model, args.batch_size, 1, total - 1, True, extra)
        print(
            f"3. dev F1 (SQuAD 2.0, tuned threshold) after {total} steps: plain {plain_f1(dm, net):.2f}, litzoo {ours:.2f}"
        )


if __name__ == "__main__":
    main()

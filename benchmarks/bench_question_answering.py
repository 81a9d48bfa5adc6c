"""Question answering, side by side on the same windows of the embedded SQuAD-format set:

1. evaluation throughput (questions/s) with length-bucketed vs unsorted (sequential) batches of
   windows, same model, same data; the padding fraction of each; and whether both give the same answers;
2. training throughput (windows/s): litzoo's task (forward, masked loss, backward, AdamW step, clipping)
   vs a plain transformers loop (``AutoModelForQuestionAnswering`` with its own loss) on the same batches.

    python benchmarks/bench_question_answering.py                   # tiny random BERT (fast)
    python benchmarks/bench_question_answering.py --model minilm_l6 # the bundled MiniLM
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def tiny_bert(folder: Path) -> Path:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="checkpoint (default: a tiny random BERT)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    from litzoo.data.samplers import FixedBucketSampler, SequentialBatchSampler
    from litzoo.datamodules.question_answering.datamodule import ToySquadDataModule
    from litzoo.tasks.question_answering import QuestionAnsweringTask

    work = Path(tempfile.mkdtemp())
    model = args.model or str(tiny_bert(work / "bert"))
    dm = ToySquadDataModule(
        root=work / "toy",
        num_train=60,
        num_dev=40,
        max_seq_length=128,
        doc_stride=32,
        max_query_length=32,
        tokenizer=model,
        batch_size=args.batch_size,
    )
    dm.setup()
    task = QuestionAnsweringTask(
        {"_target_": "litzoo.models.question_answering.create_span_model", "pretrained": model},
        dm.info(),
        {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 3e-5},
    )
    collate, lengths = dm.collate_fn, dm.lengths("val")
    examples = dm.examples("val")

    print("1. evaluation (dev windows):")
    answers = {}
    for name, sampler in (
        ("bucketed", FixedBucketSampler(lengths, 32, num_buckets=8, bucket_scheme="linear")),
        ("unsorted", SequentialBatchSampler(len(lengths), 32)),
    ):
        from litzoo.tasks.question_answering import SquadMetrics
        from litzoo.text.span_decoding import window_candidates

        scorer = SquadMetrics(examples, dm.squad_version)
        real = padded = 0
        task.eval()
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
        scores = scorer.compute()
        seconds = time.perf_counter() - begin
        answers[name] = {q: a.text for q, a in scorer.answers.items()}
        print(
            f"   {name}: {len(examples) / seconds:.1f} questions/s, padding {1 - real / padded:.3f}, "
            f"f1 {scores.metrics['f1']:.2f}"
        )
    print(f"   same answers: {answers['bucketed'] == answers['unsorted']}")

    print("2. training (same batches):")
    from transformers import AutoModelForQuestionAnswering

    batches = [
        collate([dm.train_set[i] for i in range(k, k + args.batch_size)])
        for k in range(0, args.batch_size * args.steps, args.batch_size)
    ]
    plain = AutoModelForQuestionAnswering.from_pretrained(model).train()
    task.train()
    optimizer_task = torch.optim.AdamW(task.param_groups(), lr=3e-5)
    optimizer_plain = torch.optim.AdamW(plain.parameters(), lr=3e-5)

    def litzoo_step(batch):
        start, end = task.logits(task.net, batch)
        loss = task.loss(start, end, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), 1.0)
        optimizer_task.step()
        optimizer_task.zero_grad()

    def plain_step(batch):
        out = plain(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            start_positions=batch["start_positions"],
            end_positions=batch["end_positions"],
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
        optimizer_plain.step()
        optimizer_plain.zero_grad()

    rates = {"litzoo": [], "plain transformers": []}
    for _ in range(2):  # alternate, so machine load hits both alike
        for name, step in (("litzoo", litzoo_step), ("plain transformers", plain_step)):
            begin = time.perf_counter()
            for batch in batches:
                step(batch)
            rates[name].append(len(batches) * args.batch_size / (time.perf_counter() - begin))
    best = {name: max(values) for name, values in rates.items()}
    for name, value in best.items():
        print(f"   {name}: {value:.1f} windows/s")
    print(f"   ratio litzoo / plain: {best['litzoo'] / best['plain transformers']:.3f}")


if __name__ == "__main__":
    main()

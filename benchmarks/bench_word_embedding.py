"""litzoo's skip-gram/CBOW vs gensim's Word2Vec, side by side in one run: words/s and final scores.

Same corpus (the embedded Wikipedia sample or Lee corpus, or any tokenised file), same vocabulary
(min_count), dimension, window, negatives, subsampling, epochs and threads. litzoo runs its task's
training step (subsampling, dynamic windows, alias-sampled negatives, the chunked negative-sampling
kernel, sparse Adagrad with linear decay) in a plain loop, without Lightning; gensim runs its
optimised C (Hogwild SGD). Both sets of vectors are scored by litzoo.metrics.word_embedding, whose
numbers equal gensim's own evaluate_word_pairs / evaluate_word_analogies (tests/word_embedding).

    python benchmarks/bench_word_embedding.py                        # enwiki_sample, 5 epochs, 1 thread
    python benchmarks/bench_word_embedding.py --corpus lee --epochs 20 --threads 2

Speed is reported by the wall clock and by the process's CPU clock (words per CPU-second).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="enwiki_sample", help="enwiki_sample, lee, or a tokenised file")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--objective", default="skipgram", choices=["skipgram", "cbow"])
    parser.add_argument("--lr", type=float, default=0.3, help="litzoo's Adagrad learning rate")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from gensim.models import Word2Vec

    from litzoo.datamodules.word_embedding.datamodule import EmbeddedCorpusDataModule, TextCorpusDataModule
    from litzoo.metrics.word_embedding import VectorSpace, evaluate_space
    from litzoo.tasks.word_embedding import WordEmbeddingTask

    root = tempfile.mkdtemp()
    if args.corpus in EmbeddedCorpusDataModule.CORPORA:
        data = EmbeddedCorpusDataModule(corpus=args.corpus, root=root, seed=0)
    else:
        data = TextCorpusDataModule(path=args.corpus, seed=0)
    info = data.info()
    data.setup("fit")
    sets = data.evaluation_sets()
    words_per_epoch = data.corpus_index().num_tokens

    task = WordEmbeddingTask(
        model={
            "_target_": "litzoo.models.word_embedding.WordEmbeddingModel",
            "dim": args.dim,
            "objective": args.objective,
        },
        data_info=info,
        optim={"_target_": "torch.optim.Adagrad", "_partial_": True, "lr": args.lr},
    )
    optimizer = torch.optim.Adagrad(task.param_groups(), lr=args.lr)
    blocks = len(data.train_set)
    steps, step = args.epochs * blocks, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        for block in np.random.default_rng([0, epoch]).permutation(blocks):
            batch = data.collate_fn([data.train_set[int(block)]])
            for group in optimizer.param_groups:
                group["lr"] = args.lr * (1 - step / steps)
            loss, _ = task.pair_loss(batch["tokens"], batch["sentence"], torch.Generator().manual_seed(step))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    ours_time, ours_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ours = evaluate_space(VectorSpace(task.words, task.net.word_vectors()), sets).metrics

    sentences = [s for s in _sentences(data)]
    start, cpu_start = time.perf_counter(), time.process_time()
    model = Word2Vec(
        sentences,
        vector_size=args.dim,
        window=5,
        min_count=data.min_count,
        negative=5,
        sample=1e-3,
        sg=int(args.objective == "skipgram"),
        epochs=args.epochs,
        workers=args.threads,
        seed=1,
    )
    gensim_time, gensim_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    theirs = evaluate_space(
        VectorSpace(model.wv.index_to_key, torch.from_numpy(model.wv.vectors)), sets
    ).metrics

    total = words_per_epoch * args.epochs
    print(
        f"corpus {args.corpus}: {words_per_epoch} tokens x {args.epochs} epochs, {len(task.words)} words, "
        f"dim {args.dim}, {args.objective}, {args.threads} thread(s)"
    )
    print(f"{'':<28}{'litzoo':>12}{'gensim':>12}")
    print(f"{'words/s (wall)':<28}{total / ours_time:>12.0f}{total / gensim_time:>12.0f}")
    # CPU seconds of the process (all its threads): what the code costs, far less disturbed than the
    # wall clock by other jobs on a shared machine.
    print(f"{'words/CPU-s':<28}{total / ours_cpu:>12.0f}{total / gensim_cpu:>12.0f}")
    for key in ("wordsim353_spearman", "simlex999_spearman", "analogy_covered_acc", "analogy_acc"):
        print(f"{key:<28}{ours[key]:>12.4f}{theirs[key]:>12.4f}")


def _sentences(data):
    """The corpus' sentences as gensim gets them: the same in-vocabulary tokens, cut the same way."""
    reader = data.train_set.reader
    words = data.vocabulary().words
    for block in range(len(data.train_set)):
        ids, lengths = reader.sentences(block)
        position = 0
        for length in lengths.tolist():
            yield [words[i] for i in ids[position : position + length]]
            position += length


if __name__ == "__main__":
    main()

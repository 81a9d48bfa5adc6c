"""Kim's convolutional network for sentence classification (Kim, EMNLP 2014).

Word embeddings -> parallel 1-D convolutions (windows 3, 4, 5; 100 feature maps
each) -> ReLU -> max-over-time pooling -> dropout 0.5 -> linear layer. The four
variants of the paper differ only in the embeddings:

============  ==========================================================
rand          one embedding table, randomly initialised, trained
static        pretrained vectors (GloVe/word2vec), frozen
non-static    pretrained vectors, fine-tuned
multichannel  two channels from the same vectors, one frozen and one
              fine-tuned; every filter sees both (their responses add up)
============  ==========================================================

Kim also bounds the l2 norm of each output-layer weight vector to s = 3 after
every update: call `apply_max_norm_()` after `optimizer.step()`.

Sentence pairs are classified by joining them as `a <sep> b` (see
`litzoo.text.tokenizers.VocabEncoder`); textCNN has no segment notion.

Padding does not change the output: the padding row of the embedding is zero
and only windows that start inside the sentence enter the max, so a sentence
scores the same alone or in a padded batch (length bucketing is free to vary
the padding).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from litzoo.errors import ConfigError
from litzoo.text.vocab import Vocab
from litzoo.text.word_vectors import PretrainedEmbeddings, build_embedding_matrix

log = logging.getLogger("litzoo")

TEXTCNN_VARIANTS: tuple[str, ...] = ("rand", "static", "non-static", "multichannel")


def normalize_variant(variant: str) -> str:
    """Canonical variant name; `non_static` and `nonstatic` are accepted for `non-static`."""
    name = variant.lower().replace("_", "-")
    name = "non-static" if name == "nonstatic" else name
    if name not in TEXTCNN_VARIANTS:
        raise ConfigError(
            f"Unknown textCNN variant {variant!r}; choose one of {', '.join(TEXTCNN_VARIANTS)}."
        )
    return name


class TextCNN(nn.Module):
    """Kim (2014) textCNN; `forward(input_ids, lengths)` returns logits `[batch, num_classes]`.

    `num_classes=1` gives a single output for regression. `pretrained` (a
    `[vocab_size, dim]` tensor) is required by every variant but `rand`.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        variant: str = "rand",
        embed_dim: int | None = None,
        pretrained: torch.Tensor | None = None,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        num_filters: int = 100,
        dropout: float = 0.5,
        max_norm: float | None = 3.0,
        padding_idx: int = 0,
        init_range: float = 0.25,
    ) -> None:
        super().__init__()
        self.variant = normalize_variant(variant)
        if num_classes < 1:
            raise ConfigError(f"textCNN needs num_classes >= 1, got {num_classes}.")
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConfigError(
                f"textCNN kernel_sizes must be positive window sizes, got {list(kernel_sizes)}."
            )
        embed_dim = self._check_pretrained(vocab_size, embed_dim, pretrained)
        self.padding_idx = padding_idx
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.max_norm = max_norm

        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        if pretrained is None:
            nn.init.uniform_(self.embedding.weight, -init_range, init_range)
        else:
            self.embedding.weight.data.copy_(pretrained)
        with torch.no_grad():
            self.embedding.weight[padding_idx].zero_()
        self.embedding.weight.requires_grad_(self.variant != "static")

        self.static_embedding: nn.Embedding | None = None
        if self.variant == "multichannel":
            assert pretrained is not None
            self.static_embedding = nn.Embedding.from_pretrained(
                self.embedding.weight.detach().clone(), freeze=True, padding_idx=padding_idx
            )
        channels = 2 if self.static_embedding is not None else 1
        # A Conv1d over the concatenated channels is exactly Kim's per-channel filters summed.
        self.convs = nn.ModuleList(nn.Conv1d(channels * embed_dim, num_filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_filters * len(self.kernel_sizes), num_classes)

    def _check_pretrained(
        self, vocab_size: int, embed_dim: int | None, pretrained: torch.Tensor | None
    ) -> int:
        if pretrained is None:
            if self.variant != "rand":
                raise ConfigError(
                    f"textCNN variant {self.variant!r} needs pretrained word vectors: set model.embeddings to a "
                    "local GloVe/word2vec text file, or use model.variant=rand."
                )
            return embed_dim or 300
        if pretrained.dim() != 2 or pretrained.shape[0] != vocab_size:
            raise ConfigError(
                f"Pretrained embedding matrix has shape {tuple(pretrained.shape)}, expected ({vocab_size}, dim) "
                "for this vocabulary; build it with litzoo.text.word_vectors.build_embedding_matrix(vocab, path)."
            )
        if embed_dim is not None and embed_dim != pretrained.shape[1]:
            raise ConfigError(
                f"model.embed_dim={embed_dim} but the word vectors have {pretrained.shape[1]} dimensions; "
                "leave embed_dim unset to take it from the vectors."
            )
        return int(pretrained.shape[1])

    def features(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Max-pooled convolution features `[batch, num_filters * len(kernel_sizes)]` (before dropout)."""
        if lengths is None:
            lengths = (input_ids != self.padding_idx).sum(dim=1)
        lengths = lengths.clamp(min=1).to(input_ids.device)
        channels = [self.embedding(input_ids)]
        if self.static_embedding is not None:
            channels.append(self.static_embedding(input_ids))
        x = torch.cat(channels, dim=-1).transpose(1, 2)  # [B, C*D, T]
        # Zero-pad on the right so that even a one-word sentence has a full window of each size.
        x = F.pad(x, (0, max(self.kernel_sizes) - 1))
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(x))  # [B, F, positions]
            starts = torch.arange(h.shape[-1], device=h.device)
            inside = (starts[None, :] < lengths[:, None]).unsqueeze(1)
            # After ReLU every value is >= 0, so filling outside windows with 0 leaves the max unchanged.
            pooled.append(h.masked_fill(~inside, 0.0).amax(dim=-1))
        return torch.cat(pooled, dim=1)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits `[batch, num_classes]` for right-padded `input_ids` `[batch, time]`."""
        return self.classifier(self.dropout(self.features(input_ids, lengths)))

    @torch.no_grad()
    def apply_max_norm_(self) -> None:
        """Rescale output-layer weight rows whose l2 norm exceeds `max_norm` (Kim's constraint)."""
        if self.max_norm is not None:
            weight = self.classifier.weight
            weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=self.max_norm))


def build_textcnn(
    vocab: Vocab,
    num_classes: int,
    variant: str = "rand",
    embeddings: str | Path | None = None,
    embed_dim: int | None = None,
    seed: int = 0,
    **kwargs,
) -> tuple[TextCNN, PretrainedEmbeddings | None]:
    """A textCNN for `vocab`, reading word vectors from `embeddings` when the variant needs them.

    Returns the model and the embedding coverage (None for `rand`), whose
    `describe()` is the line to log ("... found, ... initialised at random").
    """
    variant = normalize_variant(variant)
    if variant == "rand":
        return TextCNN(
            len(vocab), num_classes, variant, embed_dim=embed_dim, padding_idx=vocab.pad_id, **kwargs
        ), None
    if embeddings is None:
        raise ConfigError(
            f"textCNN variant {variant!r} needs pretrained word vectors: set model.embeddings=<path to a GloVe or "
            "word2vec text file>, or use model.variant=rand."
        )
    vectors = build_embedding_matrix(vocab, embeddings, dim=embed_dim, seed=seed)
    model = TextCNN(
        len(vocab), num_classes, variant, pretrained=vectors.weights, padding_idx=vocab.pad_id, **kwargs
    )
    return model, vectors


def create_textcnn(
    num_labels: int,
    vocab_size: int,
    pad_id: int = 0,
    vocab: Vocab | None = None,
    variant: str = "rand",
    embeddings: str | Path | None = None,
    embed_dim: int | None = None,
    kernel_sizes: Sequence[int] = (3, 4, 5),
    num_filters: int = 100,
    dropout: float = 0.5,
    max_norm: float | None = 3.0,
    init_range: float = 0.25,
    seed: int = 0,
    load_pretrained: bool = True,
) -> TextCNN:
    """The `conf/model/textcnn.yaml` factory: a textCNN for the data's vocabulary and label count.

    The task passes `num_labels` (1 = regression), the vocabulary's size and padding id and,
    while training, the `Vocab` itself so the word vectors of `embeddings` can be looked up
    (found/random counts are logged). `load_pretrained=False` (rebuilding a trained model whose
    weights come from a checkpoint) skips the vector file and needs `embed_dim`.
    """
    variant = normalize_variant(variant)
    options = dict(kernel_sizes=kernel_sizes, num_filters=num_filters, dropout=dropout, max_norm=max_norm)
    if variant == "rand":
        return TextCNN(
            vocab_size,
            num_labels,
            variant,
            embed_dim=embed_dim,
            padding_idx=pad_id,
            init_range=init_range,
            **options,
        )
    if not load_pretrained:
        if embed_dim is None:
            raise ConfigError(
                f"Rebuilding a textCNN ({variant}) without its word-vector file needs model.embed_dim."
            )
        placeholder = torch.zeros(vocab_size, embed_dim)  # the checkpoint's weights replace it
        return TextCNN(vocab_size, num_labels, variant, pretrained=placeholder, padding_idx=pad_id, **options)
    if vocab is None or len(vocab) != vocab_size:
        raise ConfigError(
            f"textCNN variant {variant!r} looks up word vectors by word, so it needs the vocabulary of the data "
            f"(vocab_size={vocab_size}); build it through task=text_classification, which passes it."
        )
    model, vectors = build_textcnn(
        vocab, num_labels, variant, embeddings, embed_dim=embed_dim, seed=seed, **options
    )
    if vectors is not None:
        log.info("textCNN (%s): %s", variant, vectors.describe())
    return model

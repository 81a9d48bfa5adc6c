"""Batchify functions: exact outputs on mixed inputs, GluonNLP's documented examples, a reference
comparison with torch's pad_sequence, errors, pickling, DataLoader workers and Hydra configs."""

from __future__ import annotations

import pickle
from typing import NamedTuple as TypingNamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pad_sequence

from litzoo.data import batchify
from litzoo.data.batchify import Dict, List, NamedTuple, Pad, Stack, Tuple
from litzoo.errors import ConfigError, DataError


class Sample(TypingNamedTuple):
    tokens: list
    label: int


# ---------------------------------------------------------------------------------- Pad


def test_pad_lists_matches_gluonnlp_example():
    out = Pad()([[1, 2, 3, 4], [4, 5, 6], [8, 2]])
    assert out.dtype == torch.int64
    assert out.tolist() == [[1, 2, 3, 4], [4, 5, 6, 0], [8, 2, 0, 0]]


def test_pad_ret_length_and_round_to():
    out, lengths = Pad(pad_val=-1, ret_length=True, round_to=8)([[1, 2, 3, 4, 5], [4, 5, 6], [8, 2]])
    assert out.shape == (3, 8)
    assert out[1].tolist() == [4, 5, 6, -1, -1, -1, -1, -1]
    assert lengths.dtype == torch.int64 and lengths.tolist() == [5, 3, 2]
    # a length that is already a multiple is not rounded further
    assert Pad(round_to=4)([[1, 2, 3, 4], [1]]).shape == (2, 4)


def test_pad_axis1_numpy_matches_gluonnlp_example():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[5, 8], [1, 2]])
    out = Pad(axis=1, pad_val=-1)([a, b])
    assert out.tolist() == [[[1, 2, 3, 4], [5, 6, 7, 8]], [[5, 8, -1, -1], [1, 2, -1, -1]]]
    assert out.dtype == torch.from_numpy(a).dtype
    assert torch.equal(Pad(axis=-1, pad_val=-1)([a, b]), out)


def test_pad_keeps_input_dtypes_and_promotes_mixed_batches():
    assert Pad()([np.zeros(2, np.float16), np.zeros(3, np.float16)]).dtype == torch.float16
    assert (
        Pad()([torch.ones(2, dtype=torch.bfloat16), torch.ones(1, dtype=torch.bfloat16)]).dtype
        == torch.bfloat16
    )
    assert Pad()([[1.5, 2.0], [1.0]]).dtype == torch.get_default_dtype()
    assert Pad()([[True], [False, True]]).tolist() == [[True, False], [False, True]]
    mixed = Pad()([np.array([1, 2]), torch.tensor([0.5]), [3]])
    assert mixed.dtype == torch.float32
    assert mixed.tolist() == [[1.0, 2.0], [0.5, 0.0], [3.0, 0.0]]
    assert Pad(dtype="float32")([[1, 2], [3]]).dtype == torch.float32
    assert Pad(dtype=np.int32)([[1, 2], [3]]).dtype == torch.int32
    assert Pad(dtype=torch.int16)([[1, 2], [3]]).dtype == torch.int16


def test_pad_empty_sample_and_multidim():
    out = Pad(pad_val=7)([np.zeros((0, 2)), np.ones((3, 2))])
    assert out.shape == (2, 3, 2)
    assert (out[0] == 7).all() and (out[1] == 1).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=8),
    st.integers(1, 3),
    st.integers(-5, 5),
)
def test_pad_equals_torch_pad_sequence(lengths, features, pad_val):
    gen = torch.Generator().manual_seed(sum(lengths) + features)
    samples = [torch.randint(0, 100, (n, features), generator=gen) for n in lengths]
    expected = pad_sequence(samples, batch_first=True, padding_value=pad_val)
    out, got_lengths = Pad(pad_val=pad_val, ret_length=True)(samples)
    assert torch.equal(out, expected)
    assert got_lengths.tolist() == lengths
    # the same from numpy arrays and nested Python lists
    assert torch.equal(Pad(pad_val=pad_val)([s.numpy() for s in samples]), expected)
    if min(lengths) > 0:
        assert torch.equal(Pad(pad_val=pad_val)([s.tolist() for s in samples]), expected)


def test_pad_errors_name_the_sample():
    with pytest.raises(DataError, match="sample 1 has shape"):
        Pad()([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(DataError, match="scalar"):
        Pad()([1, 2])
    with pytest.raises(DataError, match="axis=2 is out of range"):
        Pad(axis=2)([[1], [2]])
    with pytest.raises(DataError, match="sample 1 is a ragged"):
        Pad()([[[1]], [[1, 2], [3]]])
    with pytest.raises(DataError, match="List"):
        Pad()([["a", "b"], ["c"]])
    with pytest.raises(ConfigError):
        Pad(round_to=0)
    with pytest.raises(ConfigError):
        Pad(dtype="not-a-dtype")


# ---------------------------------------------------------------------------------- Stack


def test_stack_numbers_lists_arrays_tensors():
    assert Stack()([0, 1, 1]).tolist() == [0, 1, 1]
    assert Stack()([0, 1, 1]).dtype == torch.int64
    assert Stack()([0.5, 1.0]).dtype == torch.get_default_dtype()
    assert Stack()([[1, 2, 3, 4], [4, 5, 6, 8], [8, 9, 1, 2]]).tolist() == [
        [1, 2, 3, 4],
        [4, 5, 6, 8],
        [8, 9, 1, 2],
    ]
    arrays = [np.array([[1, 2], [3, 4]], dtype=np.int32), np.array([[5, 6], [7, 8]], dtype=np.int32)]
    out = Stack()(arrays)
    assert out.dtype == torch.int32 and out.shape == (2, 2, 2) and out[1, 1, 0].item() == 7
    tensors = [torch.full((3,), 2.0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)]
    assert torch.equal(Stack()(tensors), torch.stack(tensors))
    assert Stack(dtype="float32")(tensors).dtype == torch.float32
    assert Stack()([np.int64(3), torch.tensor(4), 5]).tolist() == [3, 4, 5]


def test_stack_shape_mismatch_names_sample():
    with pytest.raises(DataError, match=r"sample 2 has shape \(3,\) but sample 0 has \(2,\)"):
        Stack()([[1, 2], [3, 4], [5, 6, 7]])


# ---------------------------------------------------------------------------------- composites


def test_tuple_pad_stack_gluonnlp_example():
    a = ([1, 2, 3, 4], 0)
    b = ([5, 7], 1)
    tokens, labels = Tuple(Pad(), Stack())([a, b])
    assert tokens.tolist() == [[1, 2, 3, 4], [5, 7, 0, 0]]
    assert labels.tolist() == [0, 1]
    same = Tuple([Pad(), Stack()])([a, b])
    assert torch.equal(same[0], tokens) and torch.equal(same[1], labels)


def test_tuple_with_lengths_and_list_fields():
    data = [([1, 2, 3], "first", 0.5), ([4], "second", 1.5)]
    (tokens, lengths), texts, weights = Tuple(Pad(ret_length=True), List(), Stack())(data)
    assert tokens.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert lengths.tolist() == [3, 1]
    assert texts == ["first", "second"]
    assert weights.tolist() == [0.5, 1.5]


def test_tuple_errors():
    with pytest.raises(DataError, match="sample 1 has 3 fields but 2"):
        Tuple(Pad(), Stack())([([1], 0), ([1], 0, 9)])
    with pytest.raises(ConfigError):
        Tuple([Pad()], Stack())
    with pytest.raises(ConfigError, match="not callable"):
        Tuple(Pad(), 3)


def test_dict_batchify_and_errors():
    data = [
        {"input_ids": [1, 2, 3], "label": 1, "text": "a"},
        {"input_ids": np.array([4]), "label": 0, "text": "b"},
    ]
    out = Dict({"input_ids": Pad(pad_val=9), "label": Stack()})(data)
    assert set(out) == {"input_ids", "label"}  # keys without a function are left out
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert out["label"].tolist() == [1, 0]
    out_kwargs = Dict(input_ids=Pad(pad_val=9), label=Stack())(data)
    assert torch.equal(out_kwargs["input_ids"], out["input_ids"])
    with pytest.raises(DataError, match="sample 1 has no key 'mask'"):
        Dict(mask=Stack())([{"mask": 1}, {"label": 2}])
    with pytest.raises(DataError, match="not a dict"):
        Dict(label=Stack())([(1, 2)])


def test_named_tuple_sequence_mapping_and_import_path():
    data = [Sample([1, 2], 0), Sample([3], 1)]
    out = NamedTuple(Sample, [Pad(), Stack()])(data)
    assert isinstance(out, Sample)
    assert out.tokens.tolist() == [[1, 2], [3, 0]] and out.label.tolist() == [0, 1]
    by_name = NamedTuple(f"{__name__}.Sample", {"label": Stack(), "tokens": Pad()})(data)
    assert torch.equal(by_name.tokens, out.tokens) and torch.equal(by_name.label, out.label)
    with pytest.raises(DataError, match="not a Sample"):
        NamedTuple(Sample, [Pad(), Stack()])([([1], 0)])
    with pytest.raises(ConfigError, match="missing"):
        NamedTuple(Sample, {"tokens": Pad()})
    with pytest.raises(ConfigError, match="cannot import"):
        NamedTuple("no_such_module_xyz.Sample", [Pad(), Stack()])


def test_list_keeps_objects():
    objs = [{"a": 1}, None, "x"]
    assert List()(objs) == objs


# ---------------------------------------------------------------------------------- pickling, workers, Hydra


def _nested_collate():
    return Tuple(
        Dict(ids=Pad(pad_val=1, round_to=2), label=Stack()), NamedTuple(Sample, [Pad(), Stack()]), List()
    )


def test_batchify_functions_pickle():
    fn = _nested_collate()
    clone = pickle.loads(pickle.dumps(fn))
    data = [
        ({"ids": [5, 6, 7], "label": 1}, Sample([1], 3), "s0"),
        ({"ids": [8], "label": 0}, Sample([2, 2], 4), "s1"),
    ]
    a, b = fn(data), clone(data)
    assert torch.equal(a[0]["ids"], b[0]["ids"]) and a[0]["ids"].tolist() == [[5, 6, 7, 1], [8, 1, 1, 1]]
    assert torch.equal(a[1].tokens, b[1].tokens) and a[2] == b[2] == ["s0", "s1"]


class _ToyTextDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return list(range(1, i + 2)), i % 3


def test_collate_in_dataloader_workers_matches_main_process():
    collate = Tuple(Pad(ret_length=True), Stack())
    ds = _ToyTextDataset()
    batches = [[0, 5, 2], [9, 1], [3, 4, 6, 7, 8]]
    main = list(torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=collate))
    workers = list(torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=2))
    for (t0, l0), y0 in main:
        (t1, l1), y1 = workers.pop(0)
        assert torch.equal(t0, t1) and torch.equal(l0, l1) and torch.equal(y0, y1)
    assert main[1][0][0].tolist() == [list(range(1, 11)), [1, 2] + [0] * 8]


def test_hydra_instantiate_batchify():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "_target_": "litzoo.data.batchify.Tuple",
            "_args_": [
                {
                    "_target_": "litzoo.data.batchify.Dict",
                    "input_ids": {"_target_": "litzoo.data.batchify.Pad", "pad_val": 3, "round_to": 4},
                    "label": {"_target_": "litzoo.data.batchify.Stack", "dtype": "float32"},
                },
                {
                    "_target_": "litzoo.data.batchify.NamedTuple",
                    "container": f"{__name__}.Sample",
                    "fns": [
                        {"_target_": "litzoo.data.batchify.Pad"},
                        {"_target_": "litzoo.data.batchify.Stack"},
                    ],
                },
            ],
        }
    )
    fn = instantiate(cfg)
    pickle.loads(pickle.dumps(fn))  # what DataLoader workers need under the spawn start method
    out = fn(
        [
            ({"input_ids": [1], "label": 1}, Sample([1, 2], 5)),
            ({"input_ids": [2, 2], "label": 0}, Sample([3], 6)),
        ]
    )
    assert out[0]["input_ids"].tolist() == [[1, 3, 3, 3], [2, 2, 3, 3]]
    assert out[0]["label"].dtype == torch.float32
    assert out[1].tokens.tolist() == [[1, 2], [3, 0]]
    assert isinstance(fn.fns[0].fn_dict, dict)  # plain containers, not OmegaConf nodes


def test_resolve_dtype_names():
    assert batchify.resolve_dtype("torch.bfloat16") is torch.bfloat16
    assert batchify.resolve_dtype("int8") is torch.int8
    assert batchify.resolve_dtype(np.float64) is torch.float64
    assert batchify.resolve_dtype(None) is None

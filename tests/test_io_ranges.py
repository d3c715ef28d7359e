"""kmerx.io.split / byte_range: any partition of a file into ranges yields every record exactly once."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import batches_records, record_offsets, ref_records, shared, wrapped_fastq

import kmerx.io as kio

FILES = ["unit/MT-human.fa", "unit/lambda_virus.fa", "unit/SRR059298_first2k.fastq", "wrapped"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """name -> (path, records, record offsets); 'wrapped' is a multi-line FASTQ made from real reads."""
    out = {}
    for name in FILES:
        if name == "wrapped":
            recs = ref_records(shared("unit/SRR059298_first2k.fastq").read_bytes())[:400]
            data, offsets = wrapped_fastq(recs)
            path = tmp_path_factory.mktemp("ranges") / "wrapped.fq"
            path.write_bytes(data)
            assert sum(1 for ln in data.split(b"\n") if ln[:1] == b"@") > len(recs) + 50  # '@' quality lines
            out[name] = (path, recs, offsets)
        else:
            path = shared(name)
            data = path.read_bytes()
            out[name] = (path, ref_records(data), record_offsets(data))
    return out


def _read_ranges(path, cuts):
    got = []
    for a, b in zip(cuts, cuts[1:]):
        got.extend(batches_records(kio.read(path, byte_range=(a, b), batch_bytes=1 << 14)))
    return got


@pytest.mark.parametrize("name", FILES)
@settings(deadline=None, max_examples=60)
@given(fracs=st.lists(st.floats(0, 1), max_size=12))
@example(fracs=[])
@example(fracs=[0.0, 1.0, 0.5, 0.5])
def test_any_partition_yields_each_record_once(inputs, name, fracs):
    path, recs, _ = inputs[name]
    size = path.stat().st_size
    cuts = sorted({0, size, *(int(f * size) for f in fracs)})
    assert _read_ranges(path, cuts) == recs


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_split(inputs, name, n):
    path, recs, _ = inputs[name]
    ranges = kio.split(path, n)
    assert len(ranges) == n and ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert _read_ranges(path, [r[0] for r in ranges] + [ranges[-1][1]]) == recs


@pytest.mark.parametrize("name", ["unit/SRR059298_first2k.fastq", "wrapped", "unit/MT-human.fa"])
def test_resync_at_every_line_start(inputs, name):
    """A range starting at byte s begins with the first record whose header starts at or after s."""
    path, recs, offsets = inputs[name]
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10 and i + 1 < len(data)]
    j = 0
    for s in starts:
        while j < len(offsets) and offsets[j] < s:
            j += 1
        it = kio.read(path, byte_range=(s, len(data)), batch_bytes=1)
        batch = next(it, None)
        it.close()
        got = None if batch is None else batches_records([batch])[0]
        assert got == (recs[j] if j < len(recs) else None), s

"""kmerx.io.read / read_pairs / sniff on real files, against a slow pure-Python reader."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from reference import batches_records, bgzf, raw_bytes, ref_records, shared

import kmerx
import kmerx.io as kio

UNIT = [
    "unit/MT-human.fa",
    "unit/MT-orang.fa",
    "unit/lambda_virus.fa",
    "unit/ce_samtools_test.fa.gz",
    "unit/reference_1K.fa.gz",
    "unit/SRR059298_first2k.fastq",
    "unit/Illumina1.8_HiSeqX_10k.fq.gz",
    "unit/ERR1163317_MiSeq_1k.fq.gz",
    "unit/nanopore_ONT_4k.fq.gz",
    "unit/ecoli_1K_1.fq.gz",
]


def read_all(source, **kw):
    return batches_records(kio.read(source, **kw))


@pytest.mark.parametrize("name", UNIT)
def test_real_files_match_reference(name):
    path = shared(name)
    expect = ref_records(raw_bytes(path))
    got = read_all(path, batch_bytes=1 << 16)
    assert len(got) == len(expect)
    assert sum(len(s) for _, s, _ in got) == sum(len(s) for _, s, _ in expect)
    assert got == expect


def test_schema_and_read_index():
    path = shared("unit/SRR059298_first2k.fastq")
    batches = list(kio.read(path, batch_bytes=10_000, first_index=5))
    assert len(batches) > 10
    assert all(b.schema == kio.READ_SCHEMA for b in batches)
    idx = pa.concat_arrays([b.column("read_index") for b in batches]).to_pylist()
    assert idx == list(range(5, 2005))
    # Bounded by bytes: every batch but single-record ones fits in batch_bytes.
    for b in batches:
        used = sum(pc.sum(pc.binary_length(b.column(c))).as_py() for c in ("name", "seq", "qual"))
        assert used <= 10_000 or b.num_rows == 1, used


def test_fasta_qual_is_null_and_case_kept():
    path = shared("unit/MT-human.fa")
    (b,) = list(kio.read(path))
    assert b.column("qual").null_count == b.num_rows == 1
    data = b""
    for rec in kio.read(shared("genomes/Pfalciparum_smalt_genome_1.fa.gz"), batch_bytes=1 << 20):
        data = rec.column("seq")[0].as_py()[:1000]
        break
    assert data == data.lower() and data


def test_record_larger_than_batch_is_its_own_batch():
    path = shared("unit/lambda_virus.fa")
    (b,) = list(kio.read(path, batch_bytes=100))
    assert len(b.column("seq")[0].as_py()) == 48502


def test_phred64():
    path = shared("unit/sample_101s_phred64.fastq.gz")
    got = read_all(path, phred=64)
    expect = ref_records(raw_bytes(path))
    assert got == expect and len(got) == 1000
    # Phred+33 data (Q0 '!') is out of range for Phred+64.
    with pytest.raises(kmerx.FastxFormatError, match=r"record 1, line 4: quality byte .* Phred\+64"):
        read_all(shared("unit/SRR059298_first2k.fastq"), phred=64)


def test_forced_format_mismatch():
    with pytest.raises(kmerx.FastxFormatError, match="expected '>'"):
        read_all(shared("unit/SRR059298_first2k.fastq"), format="fasta")
    with pytest.raises(kmerx.FastxFormatError, match="expected '@'"):
        read_all(shared("unit/MT-human.fa"), format="fastq")


def test_fasta_crlf_blank_lines_lowercase(tmp_path):
    p = tmp_path / "x.fa"
    p.write_bytes(b"\r\n\n>a desc\r\nacgT\r\n\r\nNNa\r\n>b\r\n>c\nAC\n\n\n")
    assert read_all(p) == [("a desc", b"acgTNNa", None), ("b", b"", None), ("c", b"AC", None)]


def test_fastq_crlf_and_wrapped(tmp_path):
    p = tmp_path / "x.fq"
    p.write_bytes(b"@r1 x\r\nAC\r\nGT\r\n+r1 x\r\n@+\r\nII\r\n\r\n@r2\nA\n+\n+\n@r3\n\n+\n\n")
    assert read_all(p) == [("r1 x", b"ACGT", b"@+II"), ("r2", b"A", b"+"), ("r3", b"", b"")]


@pytest.mark.parametrize("content", [b"", b"\n\n\r\n  \n"])
def test_empty_input_is_zero_records(tmp_path, content):
    p = tmp_path / "empty.fq"
    p.write_bytes(content)
    assert list(kio.read(p)) == []
    assert list(kio.read(io.BytesIO(gzip.compress(content)))) == []


def test_multi_member_gzip_and_bgzf(tmp_path):
    data = raw_bytes(shared("unit/SRR059298_first2k.fastq"))
    expect = ref_records(data)
    cut = [0, 1000, 77777, 200000, len(data)]
    multi = tmp_path / "multi.fq.gz"
    multi.write_bytes(b"".join(gzip.compress(data[a:b]) for a, b in zip(cut, cut[1:])))
    assert read_all(multi) == expect
    bg = tmp_path / "x.fq.bgz"
    bg.write_bytes(bgzf(data))
    assert kio.sniff(bg) == {"compression": "bgzf", "format": "fastq"}
    assert read_all(bg) == expect
    assert read_all(io.BytesIO(bg.read_bytes())) == expect


def test_gzip_trailing_zero_padding(tmp_path):
    data = raw_bytes(shared("unit/MT-human.fa"))
    p = tmp_path / "pad.fa.gz"
    p.write_bytes(gzip.compress(data) + b"\0" * 100)
    assert read_all(p) == ref_records(data)


@pytest.mark.parametrize("comp", ["bz2", "xz"])
def test_bz2_xz(tmp_path, comp):
    data = raw_bytes(shared("unit/SRR059298_first2k.fastq"))
    packed = bz2.compress(data) if comp == "bz2" else lzma.compress(data)
    p = tmp_path / "reads.bin"  # detection is by content, not by name
    p.write_bytes(packed)
    assert kio.sniff(p)["compression"] == comp
    assert read_all(p) == ref_records(data)
    assert read_all(io.BytesIO(packed)) == ref_records(data)
    trunc = tmp_path / "trunc.bin"
    trunc.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(kmerx.FastxFormatError, match=f"trunc.bin: corrupt or truncated {comp}"):
        read_all(trunc)


def test_zstd(tmp_path):
    data = raw_bytes(shared("unit/MT-human.fa"))
    try:
        import zstandard
    except ImportError:
        p = tmp_path / "x.zst"
        p.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
        with pytest.raises(ImportError, match="zstandard"):
            read_all(p)
        return
    p = tmp_path / "x.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(data))
    assert read_all(p) == ref_records(data)


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_gzip_raises_naming_file(tmp_path, cut):
    packed = shared("unit/ecoli_1K_1.fq.gz").read_bytes()
    p = tmp_path / "cut.fq.gz"
    p.write_bytes(packed[: int(len(packed) * cut)])
    with pytest.raises(kmerx.FastxFormatError, match=r"cut\.fq\.gz: .*gzip"):
        read_all(p)


def test_corrupt_gzip_raises(tmp_path):
    packed = bytearray(shared("unit/ecoli_1K_1.fq.gz").read_bytes())
    for i in range(5000, 5050):
        packed[i] ^= 0x5A
    p = tmp_path / "bad.fq.gz"
    p.write_bytes(bytes(packed))
    with pytest.raises(kmerx.FastxFormatError, match=r"bad\.fq\.gz"):
        read_all(p)
    p.write_bytes(gzip.compress(b">a\nACGT\n") + b"garbage")
    with pytest.raises(kmerx.FastxFormatError, match="trailing garbage"):
        read_all(p)


class _NoPeek:
    """A non-seekable stream without peek()."""

    def __init__(self, data: bytes):
        self._b = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._b.read(min(n, 999))


def test_file_objects():
    path = shared("unit/ecoli_1K_2.fq.gz")
    expect = ref_records(raw_bytes(path))
    with open(path, "rb") as f:
        assert read_all(f) == expect
    assert read_all(io.BytesIO(path.read_bytes())) == expect
    assert read_all(_NoPeek(path.read_bytes())) == expect
    assert read_all(_NoPeek(raw_bytes(path))) == expect


def test_text_mode_file_is_rejected():
    with open(shared("unit/MT-human.fa")) as f, pytest.raises(TypeError, match="binary stream"):
        kio.read(f)


def test_file_object_errors_propagate():
    class Boom:
        def read(self, n):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        read_all(Boom())


def test_early_close_stops_thread():
    path = shared("reads/SRR059298_subset_100k.fastq.gz")
    for src in (path, open(path, "rb")):
        it = kio.read(src, batch_bytes=1 << 12)
        next(it)
        it.close()
        if hasattr(src, "close"):
            src.close()


def test_file_url():
    path = shared("unit/MT-human.fa")
    assert read_all(path.resolve().as_uri()) == ref_records(raw_bytes(path))


def test_stdin():
    path = shared("unit/ecoli_1K_1.fq.gz")
    code = textwrap.dedent(
        """
        import kmerx.io as kio
        print(sum(b.num_rows for b in kio.read("-")))
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with open(path, "rb") as f:
        out = subprocess.run([sys.executable, "-c", code], stdin=f, capture_output=True, env=env, check=True)
    assert out.stdout.strip() == b"2054"


def test_read_pairs():
    r1, r2 = shared("unit/ecoli_1K_1.fq.gz"), shared("unit/ecoli_1K_2.fq.gz")
    n = 0
    for a, b in kio.read_pairs(r1, r2, batch_bytes=7000):
        assert a.num_rows == b.num_rows > 0
        assert a.column("read_index").to_pylist() == b.column("read_index").to_pylist()
        n += a.num_rows
    assert n == 2054


def test_read_pairs_mismatch(tmp_path):
    r1 = shared("unit/ecoli_1K_1.fq.gz")
    recs = ref_records(raw_bytes(shared("unit/ecoli_1K_2.fq.gz")))
    bad = list(recs)
    bad[10] = ("other/2", bad[10][1], bad[10][2])
    p = tmp_path / "r2.fq"
    p.write_bytes(b"".join(b"@%s\n%s\n+\n%s\n" % (n.encode(), s, q) for n, s, q in bad))
    msg = r"ecoli_1K_1.fq.gz and .*r2.fq: record 11: mate names differ"
    with pytest.raises(kmerx.FastxFormatError, match=msg):
        list(kio.read_pairs(r1, p))
    p.write_bytes(b"".join(b"@%s\n%s\n+\n%s\n" % (n.encode(), s, q) for n, s, q in recs[:-1]))
    with pytest.raises(kmerx.FastxFormatError, match="different numbers of records"):
        list(kio.read_pairs(r1, p))


def test_sniff():
    assert kio.sniff(shared("unit/MT-human.fa")) == {"compression": "none", "format": "fasta"}
    assert kio.sniff(shared("unit/ecoli_1K_1.fq.gz")) == {"compression": "gzip", "format": "fastq"}


def test_bad_arguments(tmp_path):
    path = shared("unit/MT-human.fa")
    with pytest.raises(ValueError, match="format must be"):
        kio.read(path, format="fa")
    with pytest.raises(ValueError, match="phred must be 33 or 64, got 50"):
        kio.read(path, phred=50)
    with pytest.raises(ValueError, match="batch_bytes must be >= 1, got 0"):
        kio.read(path, batch_bytes=0)
    with pytest.raises(ValueError, match="first_index must be >= 0, got -1"):
        kio.read(path, first_index=-1)
    with pytest.raises(TypeError, match="source must be"):
        kio.read(3.5)
    with pytest.raises(ValueError, match="byte_range needs an uncompressed"):
        kio.read(shared("unit/ecoli_1K_1.fq.gz"), byte_range=(0, 10))
    with pytest.raises(ValueError, match="byte_range needs an uncompressed"):
        kio.read(io.BytesIO(b">a\nA\n"), byte_range=(0, 10))
    with pytest.raises(ValueError, match="byte_range end must be >= 5, got 2"):
        kio.read(path, byte_range=(5, 2))
    with pytest.raises(ValueError, match="split needs an uncompressed"):
        kio.split(shared("unit/ecoli_1K_1.fq.gz"), 2)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        kio.split(path, 0)
    with pytest.raises(FileNotFoundError):
        kio.read(tmp_path / "missing.fq")


@pytest.mark.parametrize("via", ["path", "stream"])
def test_records_larger_than_the_read_buffer(tmp_path, via):
    import numpy as np

    big = np.random.default_rng(3).choice(np.frombuffer(b"ACGT", np.uint8), 9 << 20).tobytes()
    wrapped = b"\n".join(big[i : i + 70] for i in range(0, len(big), 70))
    fa = b">one line\n" + big + b"\n>wrapped\n" + wrapped + b"\n>x\nA\n"
    fq = b"@long\n" + big + b"\n+\n" + b"I" * len(big) + b"\n" + GOOD_FQ
    for data, expect in (
        (fa, [("one line", big, None), ("wrapped", big, None), ("x", b"A", None)]),
        (fq, [("long", big, b"I" * len(big)), ("r1", b"ACGT", b"IIII")]),
    ):
        p = tmp_path / "big.txt"
        p.write_bytes(data)
        batches = list(kio.read(p if via == "path" else io.BytesIO(data), batch_bytes=1 << 20))
        assert batches_records(batches) == expect
        assert [b.num_rows for b in batches][:2] == [1, 1]


GOOD_FQ = b"@r1\nACGT\n+\nIIII\n"


def test_read_config_round_trip():
    cfg = kio.ReadConfig(format="fastq", phred=64, batch_bytes=1 << 20)
    assert kio.ReadConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="phred must be 33 or 64, got 40"):
        kio.ReadConfig(phred=40)
    path = shared("unit/sample_101s_phred64.fastq.gz")
    assert sum(b.num_rows for b in kio.read(path, **cfg.kwargs())) == 1000

"""Read cleaning: one native call per ReadBatch (see docs/cleaning.md).

Order of the steps, per read: normalise bytes (case, IUPAC, U, invalid bytes) -> quality-trim the
ends -> handle N runs (keep / split / drop) -> filter each resulting piece (max N fraction, min length,
empty) -> reverse-complement augmentation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kmerx import _core
from kmerx._arrow import binary_array, seq_buffers, string_array
from kmerx._checks import check_int
from kmerx.config import StageConfig

__all__ = ["CleanConfig", "clean", "RC_SUFFIX"]

#: Appended to the name of every reverse-complemented output read.
RC_SUFFIX = _core.RC_SUFFIX

_INVALID = {"N": 0, "keep": 1, "error": 2}
_N_RUNS = {"keep": 0, "split": 1, "drop": 2}
_RC = {None: 0, "append": 1, "random": 2}


@dataclasses.dataclass(frozen=True)
class CleanConfig(StageConfig):
    """Options of :func:`clean`, with their defaults.

    uppercase (True): a-z -> A-Z. When False, lowercase bytes stay lowercase and replacements (N for
        IUPAC/invalid bytes, T for U) keep the case of the byte they replace.
    iupac ("N"): "N" turns the IUPAC ambiguity codes R Y K M S W B D H V (and N) of either case into N;
        "keep" leaves them.
    invalid ("N"): bytes that are neither A/C/G/T/U nor IUPAC codes (digits, '-', '.', '*', ...):
        "N" replaces them with N, "keep" leaves them, "error" raises ValueError naming the read.
    u_to_t (True): U -> T.
    quality_cutoff (None): cutadapt's ``-q`` 3' trimming (BWA's algorithm) at this Phred cutoff; None
        is off. A no-op for FASTA batches (null qual), so one config serves FASTA and FASTQ inputs.
    quality_cutoff_5p (None): the same for the 5' end (cutadapt ``-q 5cut,3cut``).
    phred_offset (33): 33 or 64, the ASCII offset of the qualities.
    min_length (0): pieces shorter than this after trimming and N-run splitting are dropped.
    max_n_fraction (None): pieces whose N count exceeds this fraction of their length are dropped;
        None is off. Empty pieces never fail this test.
    n_runs ("keep"): what to do with runs of at least ``n_run_length`` Ns (after trimming): "keep";
        "split" the read at each run into pieces (the runs removed); "drop" reads holding such a run.
    n_run_length (1): shortest N run that counts for ``n_runs``.
    drop_empty (True): drop reads (pieces) of length 0.
    rc (None): None; "append" adds the reverse complement of every output read after the batch's
        reads (qualities reversed); "random" reverse-complements each read with probability 1/2,
        decided by (seed, read_index) only, so results do not depend on batch boundaries.
    seed (0): seed of rc="random", 0 <= seed < 2**64.
    """

    uppercase: bool = True
    iupac: str = "N"
    invalid: str = "N"
    u_to_t: bool = True
    quality_cutoff: int | None = None
    quality_cutoff_5p: int | None = None
    phred_offset: int = 33
    min_length: int = 0
    max_n_fraction: float | None = None
    n_runs: str = "keep"
    n_run_length: int = 1
    drop_empty: bool = True
    rc: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("uppercase", "u_to_t", "drop_empty"):
            _check_type(name, getattr(self, name), bool)
        _check_choice("iupac", self.iupac, ("N", "keep"))
        _check_choice("invalid", self.invalid, tuple(_INVALID))
        _check_choice("n_runs", self.n_runs, tuple(_N_RUNS))
        _check_choice("rc", self.rc, tuple(_RC))
        for name in ("quality_cutoff", "quality_cutoff_5p"):
            value = getattr(self, name)
            if value is not None:
                check_int(name, value, 0, 255)
        _check_choice("phred_offset", self.phred_offset, (33, 64))
        check_int("min_length", self.min_length, 0, 2**62)
        check_int("n_run_length", self.n_run_length, 1, 2**62)
        check_int("seed", self.seed, 0, 2**64 - 1)
        if self.max_n_fraction is not None:
            f = self.max_n_fraction
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
                raise ValueError(f"max_n_fraction must be None or a number in 0..1, got {f!r}")


def _check_type(name: str, value: object, typ: type) -> None:
    if not isinstance(value, typ):
        raise TypeError(f"{name} must be {typ.__name__}, got {value!r}")


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _as_batch(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    if isinstance(batch, pa.Table):
        batch = batch.combine_chunks()
        return batch.to_batches()[0] if batch.num_rows else pa.RecordBatch.from_pylist([], schema=batch.schema)
    if not isinstance(batch, pa.RecordBatch):
        raise TypeError(f"batch must be a pyarrow RecordBatch (ReadBatch), got {type(batch).__name__}")
    for col in ("name", "seq", "read_index"):
        if col not in batch.schema.names:
            raise ValueError(f"batch lacks the ReadBatch column {col!r} (has {batch.schema.names})")
    return batch


def _qual_buffers(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    if "qual" not in batch.schema.names:
        return None, None
    qual = batch.column("qual")
    if qual.null_count == len(qual) and len(qual):
        return None, None
    if qual.null_count:
        raise ValueError(f"qual must be all null (FASTA) or all present, got {qual.null_count} nulls in {len(qual)}")
    return seq_buffers(qual)


def clean(batch: pa.RecordBatch, config: CleanConfig | None = None, **overrides) -> pa.RecordBatch:
    """Clean a ReadBatch; returns a ReadBatch (``name, seq, qual, read_index`` plus any extra input
    columns, taken from each output read's parent).

    ``config`` defaults to ``CleanConfig()``; keyword ``overrides`` replace its fields, e.g.
    ``clean(batch, quality_cutoff=20, min_length=30)``. See :class:`CleanConfig` for every option.

    Output reads keep their parent's ``read_index``. Names: a piece of a read split at N runs is named
    ``name:START-END`` (1-based, inclusive coordinates in the input read); a reverse-complemented read
    gets :data:`RC_SUFFIX` (``/rc``) appended (after the piece suffix). rc="append" puts all copies
    after all forward reads, in the same order.
    """
    if config is None:
        config = CleanConfig()
    elif not isinstance(config, CleanConfig):
        raise TypeError(f"config must be a CleanConfig or None, got {type(config).__name__}")
    if overrides:
        config = config.replace(**overrides)
    batch = _as_batch(batch)
    n = batch.num_rows
    data, offsets = seq_buffers(batch.column("seq"))
    qdata, qoffsets = _qual_buffers(batch)
    read_index_col = batch.column("read_index")
    if read_index_col.null_count:
        raise ValueError("read_index must not hold nulls")
    read_index = np.ascontiguousarray(read_index_col.to_numpy(zero_copy_only=False), dtype=np.int64)
    name_data, name_offsets = seq_buffers(batch.column("name"))
    seq, qual, out_offsets, parent, rc, new_names = _core.clean_reads(
        data, offsets, qdata, qoffsets, read_index, name_data, name_offsets,
        uppercase=config.uppercase,
        iupac_to_n=config.iupac == "N",
        u_to_t=config.u_to_t,
        invalid=_INVALID[config.invalid],
        quality_cutoff5=-1 if config.quality_cutoff_5p is None else config.quality_cutoff_5p,
        quality_cutoff3=-1 if config.quality_cutoff is None else config.quality_cutoff,
        phred_offset=config.phred_offset,
        min_length=config.min_length,
        max_n_fraction=-1.0 if config.max_n_fraction is None else float(config.max_n_fraction),
        n_runs=_N_RUNS[config.n_runs],
        n_run_length=config.n_run_length,
        drop_empty=config.drop_empty,
        rc=_RC[config.rc],
        seed=config.seed,
    )
    m = len(parent)
    same_rows = m == n and bool(np.array_equal(parent, np.arange(n)))
    take = (lambda col: col) if same_rows else (lambda col: pc.take(col, pa.array(parent)))

    if new_names is not None:
        names = string_array(*new_names)
    else:
        names = take(batch.column("name"))
        if names.type != pa.string():
            names = names.cast(pa.string())

    columns = {
        "name": names,
        "seq": binary_array(seq, out_offsets),
        "qual": pa.nulls(m, pa.large_binary()) if qual is None else binary_array(qual, out_offsets),
        "read_index": pa.array(read_index) if same_rows else pa.array(read_index[parent]),
    }
    fields = [pa.field("name", pa.string()), pa.field("seq", pa.large_binary()),
              pa.field("qual", pa.large_binary()), pa.field("read_index", pa.int64())]
    for f in batch.schema:
        if f.name not in columns:
            columns[f.name] = take(batch.column(f.name))
            fields.append(f)
    schema = pa.schema(fields, metadata=batch.schema.metadata)
    return pa.RecordBatch.from_arrays([columns[f.name] for f in fields], schema=schema)

"""K-mers: 2-bit codes (:mod:`.codes`), and the hashing, minimizer, sketch and counting ops built on
them. Every op takes a ReadBatch, an Arrow binary/string array, or str/bytes (see :func:`seq_arrays`)
and runs one native call per batch."""

from kmerx.kmers.codes import (
    DEVICES,
    STRANDS,
    KmerCounter,
    canonical,
    count_kmers,
    decode_kmers,
    decode_kmers_arrow,
    encode_kmers,
    kmer_codes,
    kmer_codes_numpy,
    pack_2bit,
    reverse_complement,
    seq_arrays,
    unpack_2bit,
)
from kmerx.kmers.minimizer import MINIMIZER_HASHES, minimizers, minimizers_numpy

__all__ = [
    "DEVICES",
    "STRANDS",
    "KmerCounter",
    "MINIMIZER_HASHES",
    "canonical",
    "count_kmers",
    "decode_kmers",
    "decode_kmers_arrow",
    "encode_kmers",
    "kmer_codes",
    "kmer_codes_numpy",
    "minimizers",
    "minimizers_numpy",
    "pack_2bit",
    "reverse_complement",
    "seq_arrays",
    "unpack_2bit",
]

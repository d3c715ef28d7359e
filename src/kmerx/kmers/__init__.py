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
from kmerx.kmers.hashing import MAX_NUM_HASHES, nthash, nthash_minimizers, nthash_numpy
from kmerx.kmers.minimizer import MINIMIZER_HASHES, minimizers, minimizers_numpy
from kmerx.kmers.sketch import (
    FracMinHash,
    MinHash,
    Sketch,
    load_signatures,
    max_hash_for_scaled,
    save_signatures,
)

__all__ = [
    "canonical",
    "count_kmers",
    "decode_kmers",
    "decode_kmers_arrow",
    "DEVICES",
    "encode_kmers",
    "FracMinHash",
    "kmer_codes",
    "kmer_codes_numpy",
    "KmerCounter",
    "load_signatures",
    "max_hash_for_scaled",
    "MAX_NUM_HASHES",
    "MinHash",
    "MINIMIZER_HASHES",
    "minimizers",
    "minimizers_numpy",
    "nthash",
    "nthash_minimizers",
    "nthash_numpy",
    "pack_2bit",
    "reverse_complement",
    "save_signatures",
    "seq_arrays",
    "Sketch",
    "STRANDS",
    "unpack_2bit",
]

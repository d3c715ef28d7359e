"""Tokenizers: reads -> token ids for embedding tables (docs/tokenizers.md).

Schemes: direct k-mer codes, count-based vocabularies, hashed ids (ntHash mod B, h hashes for hash
embeddings), locality-sensitive ids (LSHvec random projection, bit sampling), and presets id-for-id
compatible with DNABERT, Nucleotide Transformer, HyenaDNA and Caduceus.
"""

from kmerx.tokenizers.config import PRESETS, SCHEMES, TokenizerConfig, preset
from kmerx.tokenizers.tokenizer import Encoding, Tokenizer

__all__ = ["PRESETS", "SCHEMES", "Encoding", "Tokenizer", "TokenizerConfig", "preset"]

"""Embedding tables: dense or block-sparse rows in float32/float16/bfloat16/int8/int4, virtual rows,
a hot-block cache, and the composite tables of compressed vocabularies (hash embeddings,
quotient-remainder). Look rows up, fused with positions and pooling, with :func:`kmerx.embed`."""

from kmerx.tables.composite import HashEmbedding, QREmbedding
from kmerx.tables.config import DTYPES, INITS, TableConfig, row_bytes
from kmerx.tables.table import EmbeddingTable

__all__ = ["DTYPES", "INITS", "EmbeddingTable", "HashEmbedding", "QREmbedding", "TableConfig", "row_bytes"]

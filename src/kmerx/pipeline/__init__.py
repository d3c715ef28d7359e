"""The embedding pipeline: FASTA/FASTQ -> clean -> tokenize -> embed -> Parquet/HDF5 shards + manifest,
on Ray Data (or in-process), resumable and deterministic. ``kmerx embed`` is its command line."""

from kmerx.pipeline.config import EmbedConfig, OutputConfig, PipelineConfig
from kmerx.pipeline.driver import OutputConflictError, RunResult, plan, run

__all__ = ["EmbedConfig", "OutputConfig", "OutputConflictError", "PipelineConfig", "RunResult", "plan", "run"]

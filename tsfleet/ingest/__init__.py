"""Ingest: files, frames, messages -> validated columnar batches -> DuckDB."""

from tsfleet.ingest.pipeline import ingest_chunk
from tsfleet.ingest.report import IngestReport
from tsfleet.ingest.sources import DEFAULT_CHUNK_ROWS, Chunk, chunks, describe

__all__ = ["DEFAULT_CHUNK_ROWS", "Chunk", "IngestReport", "chunks", "describe", "ingest_chunk"]

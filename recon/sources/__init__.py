"""Data sources: upload, parse and store bank statements and ledgers as canonical Parquet."""

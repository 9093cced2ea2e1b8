"""The curation pipeline: engine-agnostic stages over Arrow record batches, run in-process,
on Ray Data or on Apache Beam."""

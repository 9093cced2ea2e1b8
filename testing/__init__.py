"""Test fixtures shared by the tests, the benchmarks and the demo: generated corpora, a
synthetic contaminated benchmark and tiny trainable models. They live outside the `babelmill`
package because no library code needs them, and in one package rather than in tests/ because
bench/ and demo/ use the same fixtures outside pytest."""

"""Operations on the whole system: the demo, the benchmarks, the soak, their fuzzers and summaries."""

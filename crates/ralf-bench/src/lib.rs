//! Benchmark helpers. The binaries here are baselines that `bench/*.sh` runs next to ralf in the
//! same run, so every figure in BENCHMARKS.md has a reference measured on the same machine.

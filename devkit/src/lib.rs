//! Tools that tests, benchmarks and fuzz targets use and the shipped binary must not carry:
//! a dev-dependency of `sls-syslog`, a dependency of `fuzz/`.

pub mod alloc;

//! Prometheus metrics per mapping (written by a helper).

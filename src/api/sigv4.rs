//! AWS Signature Version 4 verification (written by a helper).

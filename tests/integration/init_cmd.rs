//! Tests of issue 7, filled in by its builder.

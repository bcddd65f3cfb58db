//! Tests of issue 4, filled in by its builder.

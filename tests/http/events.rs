//! The Server-Sent Events stream.

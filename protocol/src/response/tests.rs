//! Tests.

use super::*;

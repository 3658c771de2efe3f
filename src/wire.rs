//! The wire strings a client recognises (the original's; kept byte for byte).

/// The first line a connection gets.
pub const GREETING: &str = " ** Welcome: you are not authenticated, provide secret.";
/// The answer to the right secret.
pub const AUTHENTICATED: &str = " ** Welcome: you are authenticated.";
/// The answer to a wrong secret.
pub const INVALID_SECRET: &str = "Invalid secret. Try again or disconnect.";
/// The first line of a framed result, followed by a space and the job id.
pub const RESULT_START: &str = "**RESULT**";
/// The last line of a framed result.
pub const RESULT_END: &str = "**ENDRESULT**";

//! Bearer secrets, browser sessions with CSRF, the throttle, the security headers.

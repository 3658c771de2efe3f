//! Request limits: body size, slow clients.

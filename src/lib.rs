//! processmanager: a process supervisor for Linux on actix.

//! The daemon's HTTP server; on this branch only the dashboard's part until the server lands.

pub mod dashboard;

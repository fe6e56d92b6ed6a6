//! The API driven over HTTP against the real server, on SQLite and on PostgreSQL.

mod auth;
mod conventions;
mod projects;

//! The API driven over HTTP against the real server, on SQLite and on PostgreSQL.

mod accounts;
mod auth;
mod backup;
mod conventions;
mod environments;
mod front_door;
mod inputs;
mod integrations;
mod inventories;
mod keys;
mod parity;
mod projects;
mod repositories;
mod roles;
mod runners;
mod schedules;
mod task_lists;
mod tasks;
mod templates;
mod views;

//! Black-box HTTP tests: the real application on port 0, against SQLite and PostgreSQL.

mod common;

mod app_protection;
mod auth;
mod browser;
mod compliance;
mod conditional_access;
mod control;
mod device_management;
mod devices;
mod directory;
mod faults;
mod filter_semantics;
mod first_hour;
mod fuzz;
mod https;
mod identity;
mod isolation;
mod mtd;
mod openapi;
mod outage;
mod protocol;
mod rbac;
mod readme;
mod references;
mod replicas;
mod reports;
mod results;
mod retention;
mod sdk;
mod seed;
mod signin;
mod store;
mod throttling;
mod worker;
mod write_path;

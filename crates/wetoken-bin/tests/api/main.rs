//! wetoken as a user sees it: the real binary, a real SQLite file, the
//! simulator over real HTTP.

mod accounts;
mod api_security;
mod auth;
mod cli;
mod cluster;
mod compat;
mod component;
mod console;
mod credentials;
mod custody;
mod diagnostics;
mod domains;
mod egress;
mod embedded;
mod events;
mod failover;
mod helpers;
mod limits;
mod master_key;
mod messages;
mod openapi;
mod proxy;
mod receiver;
mod refusals;
mod replies;
mod sandbox;
mod signin;
mod wecom;

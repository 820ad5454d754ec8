//! End-to-end tests: real UDP/TCP sockets, real clients (hickory, dig), the real binary.
//! One test binary (faster to build and link than one per file).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod abuse;
mod api;
mod bind_secondary;
mod browser;
mod cli;
mod clients;
mod cloudmap;
mod cloudwatch;
mod demo;
mod deploy;
mod dns_rules;
mod drain;
mod ecs_aws;
mod ecs_watch;
mod encrypted;
mod explain;
mod faults;
mod fixture;
mod go_resolver;
mod haproxy;
mod health;
mod ordinals;
mod prometheus;
mod regions;
mod rolling;
mod safe_config;
mod same_az;
mod secrets;
mod service_connect;
mod static_source;
mod tidy;
mod transfer;

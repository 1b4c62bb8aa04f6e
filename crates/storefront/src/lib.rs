//! The storefront: the e-commerce service the platform protects.
//!
//! Catalog, carts, idempotent checkout and orders over HTTP (axum), on MySQL (Aurora on AWS, MariaDB locally).
//! Each instance knows its region and accepts writes only while its region is active, the write fence is down
//! and it holds the current fencing epoch ([`gate`]). The same router serves a local port or, with the `lambda`
//! feature, ALB events in AWS Lambda.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod app;
pub mod client;
pub mod control;
pub mod credentials;
pub mod db;
pub mod error;
pub mod gate;
pub mod images;
pub mod metrics;
pub mod model;
pub mod sessions;

pub use api::router;
pub use client::Client;

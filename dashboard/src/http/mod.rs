//! The HTTP side: the routes ([`routes`]), the page's JSON API over the current snapshot ([`api`]), the
//! Server-Sent Events feed ([`live`]), the pieces every reply is made of ([`reply`]) and the page's static files
//! ([`assets`]). It answers from the snapshot side (`crate::snapshot`) and adds only HTTP to it.

pub mod api;
pub mod assets;
pub mod live;
pub mod reply;
pub mod routes;

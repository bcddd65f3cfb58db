//! The host layer of hubform: what runs on the server itself, over SSH.
//!
//! [`ssh::Session`] is the connection: it checks the server's host key
//! against a pin (or records it on first contact), logs in with the
//! workshop's private key and runs commands, each with a timeout, optional
//! stdin and its output streamed line by line. Commands that need root use
//! `sudo -n`, so a missing sudo rule fails instead of waiting for a
//! password.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use hubform_host::ssh::{
//!     HostKeyPolicy, RunOptions, Session, SshSettings, Target,
//! };
//!
//! # async fn example() -> Result<(), hubform_host::ssh::SshError> {
//! let target = Target {
//!     host: "127.0.0.1".into(),
//!     port: 22,
//!     user: "ubuntu".into(),
//!     key_file: "workshop.pem".into(),
//! };
//! let settings = SshSettings::default();
//! let session =
//!     Session::connect(&target, HostKeyPolicy::TrustOnFirstUse, &settings)
//!         .await?;
//! println!("pin this: {}", session.host_key());
//!
//! let print = |line: &str| eprintln!("{line}");
//! let options = RunOptions {
//!     on_line: Some(&print),
//!     ..RunOptions::new(Duration::from_secs(30))
//! };
//! let output = session.run("sudo -n id -u", options).await?;
//! assert!(output.status.success());
//! session.close().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod actions;
pub mod probe;
pub mod provider;
pub mod ssh;
pub mod status;
pub mod tljh;
mod verify;
pub mod waits;

//! The workshop lock: a key pair named `hubform-lock-<workshop>`, so that
//! two applies of one workshop cannot both act.
//!
//! EC2 refuses a second key pair of the same name
//! (`InvalidKeyPair.Duplicate`), which makes `ImportKeyPair` an atomic
//! test-and-set. The lock carries its holder and its expiry as tags, set
//! in the create call itself; the holder moves the expiry forward while it
//! works, and a lock left by a killed run is taken over once it expired.
//!
//! The lock carries `hubform:lock=<workshop>`, never `hubform:workshop`:
//! discovery filters key pairs by that tag and must not see it. Its public
//! key is generated in memory and its private key is dropped at once;
//! nobody ever logs in with it.
//!
//! ```no_run
//! # async fn demo(aws: &hubform_aws::Aws) -> Result<(), hubform_core::provider::Failure> {
//! use std::time::Duration;
//! use hubform_aws::lock::{Attempt, Claim};
//!
//! let lock = aws.lock();
//! let me = Claim { holder: "alice@laptop, pid 42, apply", process: "" };
//! match lock.take(&me, Duration::from_secs(300)).await? {
//!     Attempt::Taken(lease) => lock.release(&lease).await?,
//!     Attempt::Held(holder) => println!("held by {}", holder.holder),
//! }
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{KeyPairInfo, ResourceType, Tag};
use aws_smithy_types::date_time::{DateTime, Format};
use hubform_core::provider::Failure;
use russh::keys::{Algorithm, PrivateKey};

use crate::error::{failure, is};
use crate::{tags, Aws};

/// The tag that marks a key pair as the lock of a workshop.
pub const LOCK: &str = "hubform:lock";
/// Who holds the lock: `user@host, pid N, verb`.
pub const HOLDER: &str = "hubform:lock-holder";
/// When the lock expires, in Unix seconds.
pub const EXPIRES: &str = "hubform:lock-expires";
/// When the lock expires, for people reading the tags.
pub const EXPIRES_AT: &str = "hubform:lock-expires-at";
/// The holding process, named so that a later run on the same machine
/// can tell whether it is still there (the CLI's `lock::process`).
pub const PROCESS: &str = "hubform:lock-process";

/// How often `take` looks and tries again when other runs race it.
const ROUNDS: u32 = 4;

/// The lock of one workshop. It has its own EC2 client (the provider's,
/// with its endpoint, loopback guard and retries), so a background task
/// can keep it.
#[derive(Clone)]
pub struct Lock {
    ec2: aws_sdk_ec2::Client,
    workshop: String,
    name: String,
    poll: Duration,
}

/// A lock this run holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lock key pair's id; only this id is ever refreshed or deleted.
    pub key_pair_id: String,
    /// When it expires unless refreshed, in Unix seconds.
    pub expires: u64,
}

/// Who asks for the lock.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// `user@host, pid N, verb`, for people to read.
    pub holder: &'a str,
    /// The process, for a later run to check; empty when it cannot be
    /// named.
    pub process: &'a str,
}

/// Who holds a lock, as its tags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The lock key pair's id.
    pub key_pair_id: String,
    /// `user@host, pid N, verb`.
    pub holder: String,
    /// When the lock was taken (the key pair's creation), Unix seconds.
    pub since: Option<u64>,
    /// When it expires unless refreshed, Unix seconds.
    pub expires: u64,
    /// The holding process ([`PROCESS`]); empty when the tag is absent.
    pub process: String,
}

/// What `take` found.
#[derive(Debug)]
pub enum Attempt {
    /// This run holds the lock now.
    Taken(Lease),
    /// Another run holds it and it has not expired.
    Held(Holder),
}

/// What a refresh found.
#[derive(Debug)]
pub enum Refresh {
    /// The lock is still ours; it now expires at this Unix second.
    Kept(u64),
    /// The lock is gone (`None`) or another run holds it.
    Lost(Option<Holder>),
}

impl Aws {
    /// The lock of this provider's workshop.
    pub fn lock(&self) -> Lock {
        Lock {
            ec2: self.ec2.clone(),
            workshop: self.workshop.clone(),
            name: lock_name(&self.workshop),
            poll: self.settings.poll,
        }
    }
}

/// The name of a workshop's lock key pair. Spec validation reserves the
/// prefix, so that no spec key pair can share it.
pub fn lock_name(workshop: &str) -> String {
    format!("hubform-lock-{workshop}")
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Holder {
    /// Whether the lock has expired at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        now >= self.expires
    }
}

impl Lock {
    /// The lock key pair's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the lock for `holder` for `ttl`, unless another run holds it
    /// and it has not expired. An expired lock is deleted by its id (a
    /// new one another run has just taken keeps its own id) and the
    /// create is tried again: of two runs racing for it, one wins.
    pub async fn take(
        &self,
        claim: &Claim<'_>,
        ttl: Duration,
    ) -> Result<Attempt, Failure> {
        for round in 1..=ROUNDS {
            if let Some(found) = self.find().await? {
                if !found.expired(now()) {
                    return Ok(Attempt::Held(found));
                }
                tracing::info!(
                    lock = %self.name,
                    holder = %found.holder,
                    expired = %utc(found.expires),
                    "taking over an expired lock"
                );
                self.delete(&found.key_pair_id).await?;
            }
            if let Some(lease) = self.create(claim, ttl).await? {
                return Ok(Attempt::Taken(lease));
            }
            // Another run created it between our look and our create, or
            // AWS does not show a change yet: look again.
            tracing::debug!(lock = %self.name, round, "lock taken meanwhile");
            tokio::time::sleep(self.poll.min(Duration::from_secs(1))).await;
        }
        Err(Failure::new(format!(
            "cannot take the lock {}: other runs took it and gave it back \
             {ROUNDS} times while this run tried; run again",
            self.name
        )))
    }

    /// Takes over the lock of a run known to have ended (its process is
    /// gone) before it expired: deletes that lock by its id, then takes
    /// the lock as [`Lock::take`] does.
    pub async fn take_over(
        &self,
        ended: &Holder,
        claim: &Claim<'_>,
        ttl: Duration,
    ) -> Result<Attempt, Failure> {
        tracing::info!(
            lock = %self.name,
            holder = %ended.holder,
            "taking over the lock of a run that ended"
        );
        self.delete(&ended.key_pair_id).await?;
        self.take(claim, ttl).await
    }

    /// Moves the expiry of our lock forward by `ttl`, after checking that
    /// the lock is still ours.
    pub async fn refresh(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Refresh, Failure> {
        match self.find().await? {
            Some(found) if found.key_pair_id == lease.key_pair_id => {}
            other => return Ok(Refresh::Lost(other)),
        }
        let expires = now() + ttl.as_secs().max(1);
        self.ec2
            .create_tags()
            .resources(&lease.key_pair_id)
            .set_tags(Some(expiry_tags(expires)))
            .send()
            .await
            .map_err(|e| failure("CreateTags", &e))?;
        Ok(Refresh::Kept(expires))
    }

    /// Gives the lock back: deletes our lock key pair by its id. Gone
    /// already is fine.
    pub async fn release(&self, lease: &Lease) -> Result<(), Failure> {
        self.delete(&lease.key_pair_id).await
    }

    /// Who holds the lock now, if anyone. A key pair of the lock's name
    /// without readable lock tags was not made by hubform: an error, and
    /// it is never deleted.
    pub async fn find(&self) -> Result<Option<Holder>, Failure> {
        let out = self
            .ec2
            .describe_key_pairs()
            .filters(tags::filter("key-name", &[&self.name]))
            .send()
            .await
            .map_err(|e| failure("DescribeKeyPairs", &e))?;
        let Some(pair) = out.key_pairs().first() else {
            return Ok(None);
        };
        holder(pair, &self.workshop).map(Some).ok_or_else(|| {
            Failure::new(format!(
                "a key pair named {} ({}) exists without hubform's lock \
                 tags; hubform uses that name for the workshop's lock: \
                 delete that key pair by hand",
                self.name,
                pair.key_pair_id().unwrap_or("?")
            ))
        })
    }

    /// Imports the lock key pair with its tags in one call; `None` when a
    /// key pair of that name exists.
    async fn create(
        &self,
        claim: &Claim<'_>,
        ttl: Duration,
    ) -> Result<Option<Lease>, Failure> {
        let expires = now() + ttl.as_secs().max(1);
        let mut lock_tags = vec![
            tags::tag(LOCK, &self.workshop),
            tags::tag(HOLDER, &truncate(claim.holder, 256)),
        ];
        if !claim.process.is_empty() {
            lock_tags.push(tags::tag(PROCESS, &truncate(claim.process, 256)));
        }
        lock_tags.extend(expiry_tags(expires));

        let imported = self
            .ec2
            .import_key_pair()
            .key_name(&self.name)
            .public_key_material(Blob::new(throwaway_public_key()?))
            .tag_specifications(tags::spec(ResourceType::KeyPair, lock_tags))
            .send()
            .await;
        match imported {
            Ok(out) => Ok(Some(Lease {
                key_pair_id: out.key_pair_id().unwrap_or_default().to_owned(),
                expires,
            })),
            Err(e) if is(&e, &["InvalidKeyPair.Duplicate"]) => Ok(None),
            Err(e) => Err(failure("ImportKeyPair", &e)),
        }
    }

    /// Deletes a lock key pair by its id, never by name: the name may
    /// already belong to another run's new lock.
    async fn delete(&self, key_pair_id: &str) -> Result<(), Failure> {
        let deleted = self
            .ec2
            .delete_key_pair()
            .key_pair_id(key_pair_id)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if is(&e, &["InvalidKeyPair.NotFound"]) => Ok(()),
            Err(e) => Err(failure("DeleteKeyPair", &e)),
        }
    }
}

/// The holder a lock key pair's tags name; `None` when they are not a
/// lock of `workshop`.
fn holder(pair: &KeyPairInfo, workshop: &str) -> Option<Holder> {
    let tags = pair.tags();
    if tags::value(tags, LOCK) != Some(workshop) {
        return None;
    }
    let expires = tags::value(tags, EXPIRES)?.parse().ok()?;
    Some(Holder {
        key_pair_id: pair.key_pair_id()?.to_owned(),
        holder: tags::value(tags, HOLDER).unwrap_or("unknown").to_owned(),
        since: pair
            .create_time()
            .and_then(|t| u64::try_from(t.secs()).ok()),
        expires,
        process: tags::value(tags, PROCESS).unwrap_or_default().to_owned(),
    })
}

fn expiry_tags(expires: u64) -> Vec<Tag> {
    vec![
        tags::tag(EXPIRES, &expires.to_string()),
        tags::tag(EXPIRES_AT, &utc(expires)),
    ]
}

/// A fresh ed25519 public key in OpenSSH form. The private key never
/// leaves this function: it is dropped unwritten.
fn throwaway_public_key() -> Result<Vec<u8>, Failure> {
    let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Failure::new(format!("cannot generate a key: {e}")))?;
    key.set_comment("hubform-lock");
    let public = key.public_key().to_openssh().map_err(|e| {
        Failure::new(format!("cannot encode the public key: {e}"))
    })?;
    Ok(public.into_bytes())
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A Unix second as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let text = DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    // RFC 3339 (`2023-11-14T22:13:20Z`) in the words of a message.
    format!("{} UTC", text.replace('T', " ").trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(tags: &[(&str, &str)]) -> KeyPairInfo {
        let mut b = KeyPairInfo::builder()
            .key_name("hubform-lock-demo")
            .key_pair_id("key-0123");
        for (k, v) in tags {
            b = b.tags(tags::tag(k, v));
        }
        b.build()
    }

    #[test]
    fn utc_text_of_known_seconds() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn lock_tags_name_holder_and_expiry() {
        let found = holder(
            &pair(&[
                (LOCK, "demo"),
                (HOLDER, "alice@laptop, pid 7, apply"),
                (EXPIRES, "1700000300"),
            ]),
            "demo",
        );
        let found = found.expect("a lock");
        assert_eq!(found.holder, "alice@laptop, pid 7, apply");
        assert_eq!(found.expires, 1_700_000_300);
        assert!(!found.expired(1_700_000_299));
        assert!(found.expired(1_700_000_300));
        assert_eq!(found.process, "", "no process tag: none named");

        let named = pair(&[
            (LOCK, "demo"),
            (EXPIRES, "1700000300"),
            (PROCESS, "linux:b:4026531836:7:99"),
        ]);
        let found = holder(&named, "demo").expect("a lock");
        assert_eq!(found.process, "linux:b:4026531836:7:99");
    }

    #[test]
    fn a_key_pair_without_lock_tags_is_no_lock() {
        assert!(holder(&pair(&[]), "demo").is_none());
        let other = pair(&[(LOCK, "other"), (EXPIRES, "1")]);
        assert!(holder(&other, "demo").is_none());
        let unreadable = pair(&[(LOCK, "demo"), (EXPIRES, "soon")]);
        assert!(holder(&unreadable, "demo").is_none());
    }

    #[test]
    fn the_lock_never_carries_the_workshop_tag() {
        let tags = expiry_tags(5);
        assert!(tags.iter().all(|t| t.key() != Some(tags::WORKSHOP)));
        assert_eq!(lock_name("demo"), "hubform-lock-demo");
    }

    #[test]
    fn throwaway_keys_are_public_ed25519_keys() {
        let key = String::from_utf8(throwaway_public_key().expect("a key"))
            .expect("text");
        assert!(key.starts_with("ssh-ed25519 "), "{key}");
        assert!(!key.contains("PRIVATE"), "{key}");
        assert_ne!(throwaway_public_key().ok(), Some(key.into_bytes()));
    }
}

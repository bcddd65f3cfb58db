//! Key pairs: the private key is generated here (ed25519), written with
//! mode 0400 and synced before `ImportKeyPair`, so that a crash never
//! loses it. An existing key file is never overwritten: a key pair deleted
//! in AWS is imported again from it.

use std::path::Path;

use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::ResourceType;
use hubform_core::pause::pause_point;
use hubform_core::plan::{Action, Change};
use hubform_core::provider::Failure;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};

use crate::error::{failure, is};
use crate::{files, tags, Aws};

/// The OpenSSH public key of a private key file; `None` when the file is
/// missing.
pub fn public_key_of(path: &Path) -> Result<Option<String>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot read the private key file {}: {e}",
                path.display()
            )))
        }
    };
    let key = PrivateKey::from_openssh(text.trim()).map_err(|e| {
        Failure::new(format!(
            "{} is not an OpenSSH private key: {e}",
            path.display()
        ))
    })?;
    let public = key.public_key().to_openssh().map_err(|e| {
        Failure::new(format!("cannot encode the public key: {e}"))
    })?;
    Ok(Some(public))
}

/// Generates an ed25519 key and writes it to `path` (mode 0400).
fn generate(path: &Path, comment: &str) -> Result<String, Failure> {
    let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Failure::new(format!("cannot generate a key: {e}")))?;
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Failure::new(format!("cannot encode the key: {e}")))?;
    files::write_new(path, 0o400, pem.as_bytes())?;
    key.public_key()
        .to_openssh()
        .map_err(|e| Failure::new(format!("cannot encode the public key: {e}")))
}

pub async fn execute(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let name = &change.id.key;
    match change.action {
        Action::Delete => {
            // By name: deleting by id alone is not honoured everywhere.
            aws.ec2
                .delete_key_pair()
                .key_name(name)
                .send()
                .await
                .map_err(|e| failure("DeleteKeyPair", &e))?;
            aws.forget(&change.id);
            Ok("the local key file is kept".to_owned())
        }
        Action::Update => Ok(String::new()),
        Action::Create | Action::Replace => create(aws, change).await,
    }
}

async fn create(aws: &Aws, change: &Change) -> Result<String, Failure> {
    let name = &change.id.key;
    let file = change
        .desired
        .as_ref()
        .and_then(|d| d.text("private_key_file"))
        .unwrap_or_default();
    let path = aws.resolve(file);

    let public = match public_key_of(&path)? {
        Some(public) => public,
        None => {
            let public = generate(&path, name)?;
            pause_point("after-key-file-written");
            public
        }
    };

    let imported = aws
        .ec2
        .import_key_pair()
        .key_name(name)
        .public_key_material(Blob::new(public.into_bytes()))
        .tag_specifications(tags::spec(
            ResourceType::KeyPair,
            tags::owner_tags(&aws.workshop, &change.id),
        ))
        .send()
        .await;
    let key_id = match imported {
        Ok(out) => out.key_pair_id().unwrap_or_default().to_owned(),
        Err(e) if is(&e, &["InvalidKeyPair.Duplicate"]) => {
            return Err(Failure::new(format!(
                "ImportKeyPair failed: a key pair named {name} already \
                 exists (made by hand, or by another hubform run at the \
                 same time); run `hubform plan` to see which"
            )))
        }
        Err(e) => return Err(failure("ImportKeyPair", &e)),
    };
    pause_point("after-import-key-pair");
    aws.remember(&change.id, name);
    Ok(format!("{key_id}, private key in {file}"))
}

//! The providers of a workshop together: AWS first, then the host layer,
//! which reaches each server through what AWS knows of it.

use hubform_aws::Aws;
use hubform_core::graph::Desired;
use hubform_core::model::{Kind, Observed, ResourceId};
use hubform_core::plan::{Action, Change};
use hubform_core::provider::{Failure, Progress, Provider};
use hubform_host::provider::Host;
use hubform_host::waits::{dns_notes, https_waits, Resolver};

/// AWS and the host layer as one provider.
pub struct Stack {
    /// The AWS provider.
    pub aws: Aws,
    /// The host provider.
    pub host: Host,
    /// The graph being applied (the host layer reads server settings).
    pub desired: Desired,
    /// Looks up DNS names for the HTTPS conditions.
    pub resolver: Resolver,
}

impl Provider for Stack {
    async fn observe(&self, desired: &Desired) -> Result<Observed, Failure> {
        let observed = self.aws.observe(desired).await?;
        self.complete(desired, observed).await
    }

    async fn execute(
        &self,
        change: &Change,
        progress: &dyn Progress,
    ) -> Result<String, Failure> {
        if change.id.kind.on_host() {
            self.host
                .execute(&self.aws, &self.desired, change, progress)
                .await
        } else {
            let done = self.aws.execute(change, progress).await?;
            self.grow_root(change, progress, done).await
        }
    }
}

impl Stack {
    /// Completes what AWS discovery found (`observed`, for example from a
    /// fleet's batched discovery) with the host layer's probes, the HTTPS
    /// waits and the DNS notes.
    pub async fn complete(
        &self,
        desired: &Desired,
        mut observed: Observed,
    ) -> Result<Observed, Failure> {
        self.host.observe(&self.aws, desired, &mut observed).await?;
        observed.waits = https_waits(desired, &observed, &self.resolver).await;
        let dns = dns_notes(desired, &observed, &self.resolver).await;
        observed.notes.extend(dns);
        Ok(observed)
    }

    /// After a root volume grew, a server with a host layer grows its
    /// partition and file system too.
    async fn grow_root(
        &self,
        change: &Change,
        progress: &dyn Progress,
        done: String,
    ) -> Result<String, Failure> {
        let key = &change.id.key;
        let grew = change.id.kind == Kind::Volume
            && change.action == Action::Update
            && change.diffs.iter().any(|d| d.name == "size_gb");
        let has_host = self
            .desired
            .get(&ResourceId::new(Kind::Tljh, key))
            .is_some();
        if !grew || !has_host {
            return Ok(done);
        }
        let size = change
            .desired
            .as_ref()
            .and_then(|d| d.int("size_gb"))
            .unwrap_or(0);
        let grown = self
            .host
            .grow_root(&self.aws, &self.desired, key, size, progress)
            .await?;
        Ok(format!("{done}; {grown}"))
    }
}

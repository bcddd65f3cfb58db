//! The AWS provider of hubform: finds a workshop's IAM and EC2 objects by
//! their tags (IAM by path) and creates, changes and deletes them.
//!
//! Every object hubform creates carries `hubform:workshop=<workshop>` and
//! `hubform:id=<kind>.<key>`, set in the create call itself, so that an
//! object whose creation was interrupted is found on the next run. IAM
//! objects live under the path `/hubform/<workshop>/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hubform_aws::{Aws, Options, Settings};
//!
//! let options = Options { region: "ap-south-1".into(), ..Options::default() };
//! let aws = Aws::connect(&options, Settings::default(), "demo", ".".as_ref())
//!     .await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use hubform_core::graph::Desired;
use hubform_core::journal::Journal;
use hubform_core::model::{Kind, Observed, Resource, ResourceId};
use hubform_core::plan::Change;
use hubform_core::provider::{Failure, Progress, Provider};

mod address;
pub mod backup;
pub mod connect;
mod dns;
pub mod doctor;
pub mod error;
mod files;
pub mod fleet;
mod iam;
pub mod import;
mod instance;
mod key_pair;
pub mod lock;
mod lookalike;
mod observe;
mod security_group;
mod tags;

pub use connect::{Options, Settings};
pub use error::AwsError;

/// The AWS provider for one workshop.
pub struct Aws {
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    route53: aws_sdk_route53::Client,
    sts: aws_sdk_sts::Client,
    workshop: String,
    base_dir: PathBuf,
    settings: Settings,
    journal: Journal,
    /// Cloud ids of resources, from observation and from creates in this
    /// run, so that later changes can refer to earlier ones.
    ids: Mutex<BTreeMap<ResourceId, String>>,
    /// The image each lookup selected during observation.
    images: Mutex<BTreeMap<ResourceId, observe::FoundImage>>,
    /// Whether an instance is backed up (an AMI) before it is terminated.
    backup_first: std::sync::atomic::AtomicBool,
}

impl Aws {
    /// Connects for `workshop`; relative files resolve from `base_dir`
    /// (the spec's folder), where the create journal also lives.
    pub async fn connect(
        options: &Options,
        settings: Settings,
        workshop: &str,
        base_dir: &Path,
    ) -> Result<Aws, AwsError> {
        let config = connect::load(options, &settings).await?;

        let partition = connect::retry_partition();
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&config)
            .retry_partition(partition.clone())
            .retry_classifier(connect::NoBlindRepeat);
        let mut iam = aws_sdk_iam::config::Builder::from(&config)
            .retry_partition(partition.clone());
        let mut sts = aws_sdk_sts::config::Builder::from(&config)
            .retry_partition(partition.clone());
        let mut route53 = aws_sdk_route53::config::Builder::from(&config)
            .retry_partition(partition);
        if options.loopback_only {
            ec2 = ec2.interceptor(connect::LoopbackGuard);
            iam = iam.interceptor(connect::LoopbackGuard);
            sts = sts.interceptor(connect::LoopbackGuard);
            route53 = route53.interceptor(connect::LoopbackGuard);
        }

        Ok(Aws {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            route53: aws_sdk_route53::Client::from_conf(route53.build()),
            workshop: workshop.to_owned(),
            base_dir: base_dir.to_owned(),
            journal: Journal::open(base_dir, workshop),
            settings,
            ids: Mutex::new(BTreeMap::new()),
            images: Mutex::new(BTreeMap::new()),
            backup_first: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// A provider for another workshop on the same connection (Region,
    /// credentials, retries): clients are shared, while the journal and
    /// the ids seen are the new workshop's own. [`fleet::observe`] needs
    /// its workshops connected this way.
    pub fn for_workshop(&self, workshop: &str, base_dir: &Path) -> Aws {
        Aws {
            ec2: self.ec2.clone(),
            iam: self.iam.clone(),
            sts: self.sts.clone(),
            route53: self.route53.clone(),
            workshop: workshop.to_owned(),
            base_dir: base_dir.to_owned(),
            journal: Journal::open(base_dir, workshop),
            settings: self.settings.clone(),
            ids: Mutex::new(BTreeMap::new()),
            images: Mutex::new(BTreeMap::new()),
            backup_first: std::sync::atomic::AtomicBool::new(self.backs_up()),
        }
    }

    /// Turns off the AMI backup taken before an instance is replaced or
    /// deleted (`--no-backup`).
    pub fn skip_backups(&self) {
        self.backup_first
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether instances are backed up before they are terminated.
    fn backs_up(&self) -> bool {
        self.backup_first.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The account and ARN the credentials belong to (one STS call).
    pub async fn identity(&self) -> Result<(String, String), Failure> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| error::failure("GetCallerIdentity", &e))?;
        Ok((
            out.account().unwrap_or_default().to_owned(),
            out.arn().unwrap_or_default().to_owned(),
        ))
    }

    /// The address to reach server `key` at: its Elastic IP when it has
    /// one, else the instance's public address.
    pub async fn server_address(&self, key: &str) -> Result<String, Failure> {
        let eip = ResourceId::new(Kind::ElasticIp, key);
        let out = self
            .ec2
            .describe_addresses()
            .filters(tags::workshop_filter(&self.workshop))
            .filters(tags::filter(
                &format!("tag:{}", tags::ID),
                &[&eip.to_string()],
            ))
            .send()
            .await
            .map_err(|e| error::failure("DescribeAddresses", &e))?;
        if let Some(ip) = out.addresses().first().and_then(|a| a.public_ip()) {
            return Ok(ip.to_owned());
        }
        let instance = self.cloud_id(&ResourceId::new(Kind::Instance, key))?;
        let found = observe::describe_instances(
            self,
            vec![tags::filter("instance-id", &[&instance])],
        )
        .await?;
        found
            .first()
            .and_then(|i| i.public_ip_address())
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::new(format!(
                    "instance.{key} ({instance}) has no public address; give \
                     it an Elastic IP or set tljh.ssh_endpoint"
                ))
            })
    }

    /// The SSH host key pinned on server `key`'s instance, if any.
    pub async fn pinned_host_key(
        &self,
        key: &str,
    ) -> Result<Option<String>, Failure> {
        let instance = self.cloud_id(&ResourceId::new(Kind::Instance, key))?;
        let found = observe::describe_instances(
            self,
            vec![tags::filter("instance-id", &[&instance])],
        )
        .await?;
        Ok(found
            .first()
            .and_then(|i| tags::value(i.tags(), tags::HOST_KEY))
            .filter(|k| !k.is_empty())
            .map(str::to_owned))
    }

    /// Pins an SSH host key on server `key`'s instance (first contact).
    pub async fn pin_host_key(
        &self,
        key: &str,
        host_key: &str,
    ) -> Result<(), Failure> {
        let instance = self.cloud_id(&ResourceId::new(Kind::Instance, key))?;
        self.ec2
            .create_tags()
            .resources(&instance)
            .tags(tags::tag(tags::HOST_KEY, host_key))
            .send()
            .await
            .map_err(|e| error::failure("CreateTags", &e))?;
        hubform_core::pause::pause_point("after-pin-host-key");
        Ok(())
    }

    /// The IAM path that holds this workshop's IAM objects.
    fn iam_path(&self) -> String {
        format!("/hubform/{}/", self.workshop)
    }

    /// A path from the spec, resolved from the spec's folder.
    fn resolve(&self, path: &str) -> PathBuf {
        hubform_core::spec::resolve_path(&self.base_dir, path)
    }

    fn remember(&self, id: &ResourceId, cloud_id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.insert(id.clone(), cloud_id.to_owned());
    }

    fn forget(&self, id: &ResourceId) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.remove(id);
    }

    /// The cloud id of a resource seen or created in this run.
    fn cloud_id(&self, id: &ResourceId) -> Result<String, Failure> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(id).cloned().ok_or_else(|| {
            Failure::new(format!("{id} has no live object to refer to"))
        })
    }

    /// Runs `call` again while it fails with one of `codes`: errors that
    /// mean an object created a moment ago is not visible yet (AWS is
    /// eventually consistent). Bounded by the retry attempts, with a
    /// backoff that doubles and is jittered; each attempt is one SDK call
    /// with its own retries of throttling and server errors.
    async fn eventually<T, F, Fut>(
        &self,
        codes: &[&str],
        mut call: F,
    ) -> Result<T, error::CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, error::CallError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e)
                    if e.is(codes) && attempt < self.settings.max_attempts =>
                {
                    let ceiling =
                        self.settings.base_backoff * 2u32.pow(attempt.min(5));
                    let backoff =
                        self.settings.poll + ceiling.mul_f64(rand::random());
                    tracing::debug!(code = ?e.code, attempt, "not visible yet");
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                Err(e) if e.is(codes) => {
                    return Err(error::CallError {
                        failure: Failure::new(format!(
                            "{}; still so after {attempt} attempts: AWS may \
                             be slow to show an object made a moment ago, \
                             run the command again in a minute",
                            e.failure
                        )),
                        code: e.code,
                    })
                }
                other => return other,
            }
        }
    }

    /// Polls `check` until it returns `Some`, reporting progress, or fails
    /// after the wait timeout naming `what`.
    async fn wait_for<T, F, Fut>(
        &self,
        id: &ResourceId,
        what: &str,
        mut check: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, Failure>>,
    {
        let start = Instant::now();
        let mut last_report = Instant::now();
        loop {
            if let Some(value) = check().await? {
                return Ok(value);
            }
            if start.elapsed() >= self.settings.wait_timeout {
                return Err(Failure::new(format!(
                    "timed out after {}s waiting for {what}; run apply \
                     again to keep waiting, or raise \
                     HUBFORM_WAIT_TIMEOUT_SECS",
                    self.settings.wait_timeout.as_secs()
                )));
            }
            if last_report.elapsed().as_secs() >= 10 {
                last_report = Instant::now();
                tracing::info!(resource = %id, "still waiting for {what}");
            }
            tokio::time::sleep(self.settings.poll).await;
        }
    }
}

/// What the spec wants of a change's resource (creates and updates).
fn desired(change: &Change) -> Result<&Resource, Failure> {
    change.desired.as_ref().ok_or_else(|| {
        Failure::new(format!("internal: {} has no desired state", change.id))
    })
}

/// Whether the change touches attribute `name`.
fn changed(change: &Change, name: &str) -> bool {
    change.diffs.iter().any(|d| d.name == name)
}

impl Provider for Aws {
    async fn observe(&self, desired: &Desired) -> Result<Observed, Failure> {
        observe::observe(self, desired).await
    }

    async fn execute(
        &self,
        change: &Change,
        progress: &dyn Progress,
    ) -> Result<String, Failure> {
        match change.id.kind {
            Kind::IamGroup => iam::group(self, change).await,
            Kind::IamUser => iam::user(self, change).await,
            Kind::KeyPair => key_pair::execute(self, change).await,
            Kind::SecurityGroup => {
                security_group::execute(self, change, progress).await
            }
            Kind::Instance => instance::execute(self, change, progress).await,
            Kind::Volume => instance::volume(self, change).await,
            Kind::ElasticIp => address::execute(self, change).await,
            Kind::DnsRecord => dns::execute(self, change).await,
            // Lookups only read; the planner never changes them.
            Kind::Image => Ok(String::new()),
            Kind::System | Kind::Tljh | Kind::TljhConfig | Kind::Packages => {
                Err(Failure::new(format!(
                    "{} belongs to the host layer, not to AWS",
                    change.id
                )))
            }
        }
    }
}

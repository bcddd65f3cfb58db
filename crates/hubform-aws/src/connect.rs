//! Turning the user's AWS settings into clients: the standard config chain
//! (profile, environment, endpoint overrides), the spec's Region, retry and
//! timeout settings, and the loopback guard.
//!
//! Retries of transient errors are the SDK's, configured here and nowhere
//! else: throttling (`RequestLimitExceeded`, `Throttling`, …), HTTP 5xx
//! and dropped connections are tried again up to
//! `HUBFORM_RETRY_MAX_ATTEMPTS` times in all, after a backoff that starts
//! at `HUBFORM_RETRY_BASE_MS`, doubles each time (at most 16 times the
//! start) and is drawn at random below that (full jitter). Every other
//! error fails on the first attempt: a 4xx would fail again. The SDK's
//! retry quota (a token bucket shared by all calls of a process, which
//! stops retrying once many calls were throttled) is turned off, so that
//! each call gets exactly its attempts and an error can say how many it
//! had. Waiting for an object hubform created a moment ago to show up
//! (eventual consistency) is not a transient error: `Aws::eventually`
//! and `Aws::wait_for` do that.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::operation::allocate_address::AllocateAddressError;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::service_config::ServiceConfigKey;

use crate::AwsError;

/// The environment variable that confines hubform to loopback endpoints.
pub const LOOPBACK_ENV: &str = "HUBFORM_LOOPBACK_ONLY";

/// How to reach AWS, as the command line gives it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A named profile (`--profile`); otherwise the standard chain.
    pub profile: Option<String>,
    /// An endpoint for every service (`--endpoint-url`).
    pub endpoint_url: Option<String>,
    /// The spec's Region.
    pub region: String,
    /// Refuse every endpoint that is not loopback.
    pub loopback_only: bool,
}

/// Retries and waits. Tests shorten them through the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts per AWS call (throttling, 5xx) before giving up.
    pub max_attempts: u32,
    /// The first backoff between attempts; it doubles, with jitter.
    pub base_backoff: Duration,
    /// How long to wait for a state (running, stopped, visible).
    pub wait_timeout: Duration,
    /// How often to look while waiting.
    pub poll: Duration,
    /// The longest a single AWS call may take, retries included.
    pub operation_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            wait_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(120),
        }
    }
}

impl Settings {
    /// The defaults, overridden by `HUBFORM_RETRY_MAX_ATTEMPTS`,
    /// `HUBFORM_RETRY_BASE_MS`, `HUBFORM_WAIT_TIMEOUT_SECS`,
    /// `HUBFORM_POLL_MS` and `HUBFORM_OPERATION_TIMEOUT_SECS`.
    pub fn from_env() -> Settings {
        let mut s = Settings::default();
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(n) = num("HUBFORM_RETRY_MAX_ATTEMPTS") {
            s.max_attempts = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(ms) = num("HUBFORM_RETRY_BASE_MS") {
            s.base_backoff = Duration::from_millis(ms);
        }
        if let Some(secs) = num("HUBFORM_WAIT_TIMEOUT_SECS") {
            s.wait_timeout = Duration::from_secs(secs);
        }
        if let Some(ms) = num("HUBFORM_POLL_MS") {
            s.poll = Duration::from_millis(ms);
        }
        if let Some(secs) = num("HUBFORM_OPERATION_TIMEOUT_SECS") {
            s.operation_timeout = Duration::from_secs(secs);
        }
        s
    }
}

/// Credentials from the environment or the shared config and credentials
/// files (profiles, including `credential_process`), and nothing that
/// asks a network service for them.
fn local_credentials() -> aws_config::meta::credentials::CredentialsProviderChain
{
    aws_config::meta::credentials::CredentialsProviderChain::first_try(
        "Environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Profile",
        aws_config::profile::ProfileFileCredentialsProvider::builder().build(),
    )
}

/// Loads the AWS config for `options`, checks the loopback guard and
/// resolves credentials once, so that a broken profile fails here with its
/// own message.
pub async fn load(
    options: &Options,
    settings: &Settings,
) -> Result<SdkConfig, AwsError> {
    let retry = retry_config(settings);
    crate::error::set_attempts(settings.max_attempts);
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(settings.operation_timeout)
        .connect_timeout(Duration::from_secs(5))
        .build();

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(options.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(profile) = &options.profile {
        // `--profile` must win over credentials in the environment, as it
        // does in the AWS CLI: the default chain would look at
        // AWS_ACCESS_KEY_ID first and use another account.
        let credentials =
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    } else if options.loopback_only {
        // Only local sources: the default chain would also ask the EC2
        // instance metadata service and container endpoints, which are
        // not loopback.
        loader = loader.credentials_provider(local_credentials());
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;

    if options.loopback_only {
        for service in ["EC2", "IAM", "STS", "Route 53"] {
            // A URL given on the command line wins over every other source.
            let url = options
                .endpoint_url
                .clone()
                .or_else(|| endpoint_of(&config, service));
            check_loopback(service, url)?;
        }
    }

    let Some(provider) = config.credentials_provider() else {
        return Err(AwsError::Credentials(
            "no credentials provider is configured".to_owned(),
        ));
    };
    use aws_credential_types::provider::ProvideCredentials;
    provider.provide_credentials().await.map_err(|e| {
        let hint = match &options.profile {
            Some(p) => format!(
                "check that profile {p} exists in ~/.aws/config or \
                 ~/.aws/credentials (for SSO, run `aws sso login --profile \
                 {p}`)"
            ),
            None => "pass --profile NAME, set AWS_PROFILE, or set \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for an \
                     SSO profile, run `aws sso login --profile NAME` first)"
                .to_owned(),
        };
        AwsError::Credentials(format!("{hint} ({})", crate::error::chain(&e)))
    })?;
    Ok(config)
}

/// The SDK's retries: standard mode (exponential backoff with full
/// jitter), bounded by the settings.
pub fn retry_config(settings: &Settings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(settings.base_backoff)
        .with_max_backoff(settings.base_backoff * 16)
}

/// The retry partition of every client: without a retry quota, so that
/// each call gets all its attempts however many others were throttled.
pub fn retry_partition() -> RetryPartition {
    RetryPartition::custom("hubform")
        .token_bucket(TokenBucket::unlimited())
        .build()
}

/// Keeps the SDK from repeating `AllocateAddress` after a server error.
/// The call has no idempotency token and AWS may have carried out the
/// first attempt: a repeat would allocate a second address. A throttled
/// attempt was refused, so it is still retried. The create journal makes
/// the next run look for the address before it allocates one.
#[derive(Debug)]
pub struct NoBlindRepeat;

impl ClassifyRetry for NoBlindRepeat {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let allocation = match ctx.output_or_error() {
            Some(Err(e)) => e
                .as_operation_error()
                .and_then(|e| e.downcast_ref::<AllocateAddressError>()),
            _ => None,
        };
        match allocation {
            Some(e)
                if !e
                    .code()
                    .is_some_and(|c| crate::error::THROTTLED.contains(&c)) =>
            {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "hubform: no blind repeat of AllocateAddress"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(
            RetryClassifierPriority::transient_error_classifier(),
        )
    }
}

/// Reads `HUBFORM_LOOPBACK_ONLY`: on for `1`, `true`, `yes`, `on`; off when
/// unset or `0`, `false`, `no`, `off`, empty. Anything else is an error: a
/// safety switch must not turn itself off on a typo.
pub fn loopback_only_from_env() -> Result<bool, AwsError> {
    let Ok(value) = std::env::var(LOOPBACK_ENV) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(AwsError::NotLoopback(format!(
            "{LOOPBACK_ENV}={other:?} is neither on (1, true) nor off (0, \
             false)"
        ))),
    }
}

/// The endpoint a service will use: its own override (environment or
/// profile), else the global one; `None` means AWS's real endpoint.
pub fn endpoint_of(config: &SdkConfig, service: &str) -> Option<String> {
    let env = "AWS_ENDPOINT_URL";
    let from_service = config.service_config().and_then(|c| {
        let key = ServiceConfigKey::builder()
            .service_id(service)
            .env(env)
            .profile("endpoint_url")
            .build()
            .ok()?;
        c.load_config(key)
    });
    from_service.or_else(|| config.endpoint_url().map(str::to_owned))
}

fn check_loopback(service: &str, url: Option<String>) -> Result<(), AwsError> {
    match url {
        Some(url) if is_loopback_url(&url) => Ok(()),
        Some(url) => Err(AwsError::NotLoopback(format!(
            "the {service} endpoint {url} is not a loopback address"
        ))),
        None => Err(AwsError::NotLoopback(format!(
            "no endpoint override is set for {service}, so requests would \
             go to real AWS (pass --endpoint-url URL of a local stand-in, \
             or unset HUBFORM_LOOPBACK_ONLY to reach AWS)"
        ))),
    }
}

/// Whether a URL's host is 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The last line of defence of `HUBFORM_LOOPBACK_ONLY`: refuses to
/// transmit any request whose address is not loopback.
#[derive(Debug)]
pub struct LoopbackGuard;

impl Intercept for LoopbackGuard {
    fn name(&self) -> &'static str {
        "hubform loopback guard"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri();
        if is_loopback_url(uri) {
            Ok(())
        } else {
            Err(format!(
                "{LOOPBACK_ENV}=1: refusing to send a request to {uri}"
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback_url("http://127.0.0.1:5000"));
        assert!(is_loopback_url("http://127.3.2.1/"));
        assert!(is_loopback_url("http://localhost:80"));
        assert!(is_loopback_url("http://[::1]:9"));
        assert!(!is_loopback_url("https://ec2.ap-south-1.amazonaws.com"));
        assert!(!is_loopback_url("http://10.0.0.1"));
        assert!(!is_loopback_url("not a url"));
    }
}

//! AWS clients, and the one place that decides what an AWS error means (retryable or not,
//! throttling, a missing cluster).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

/// An AWS call that failed, classified once here.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AwsError {
    /// Throttled (ThrottlingException and friends): back off and retry.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service answered 5xx, or the connection failed or timed out: retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The cluster does not exist (ClusterNotFoundException): report, retry later.
    #[error("cluster not found: {0}")]
    ClusterNotFound(String),
    /// Anything else (access denied, bad request): not retried now.
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    /// Whether retrying soon may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }

    /// Classifies any SDK error.
    pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let text = || format!("{}", aws_sdk_ecs::error::DisplayErrorContext(err));
        match err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Self::Unavailable(text()),
            SdkError::ResponseError(_) => Self::Unavailable(text()),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                let status = Some(service.raw().status().as_u16());
                if code.contains("Throttl")
                    || code == "RequestLimitExceeded"
                    || code == "TooManyRequestsException"
                    || status == Some(429)
                {
                    Self::Throttled(text())
                } else if code == "ClusterNotFoundException" {
                    Self::ClusterNotFound(text())
                } else if status.is_some_and(|s| s >= 500) || code == "ServerException" {
                    Self::Unavailable(text())
                } else {
                    Self::Other(text())
                }
            }
            _ => Self::Other(text()),
        }
    }
}

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Region; otherwise the standard chain (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint override; the standard `AWS_ENDPOINT_URL` also works.
    pub endpoint_url: Option<String>,
    /// Per-call timeout.
    pub call_timeout: Option<Duration>,
}

/// Loads the shared SDK configuration: the standard credential chain (environment, profile,
/// ECS task role, IMDS). SDK retries are off: retries, pacing and backoff happen in one place
/// here ([`crate::pacer`]), so throttling is counted and never multiplied.
pub async fn load_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    let timeout = settings.call_timeout.unwrap_or(Duration::from_secs(10));
    loader = loader.timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build(),
    );
    loader.load().await
}

/// The HTTPS client of every AWS call (ECS, EC2, SQS, STS and the credential providers): hyper
/// with rustls on ring and the system's root certificates. The SDK's default client would bring
/// aws-lc, a large C library that dominates a cold build, for a few calls a minute.
pub fn https_client() -> aws_sdk_ecs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The config for a cluster watched through an assumed role (another account, say).
pub async fn assume_role(base: &SdkConfig, role_arn: &str) -> SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("ecsdns")
        .configure(base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
            provider,
        ))
        .build()
}

//! What every AWS SDK client of mqtrigger shares (Lambda's Invoke, the
//! event-source-mapping client, the console's signer, Secrets Manager):
//! the default region, whether an endpoint is on this machine, and the
//! region and credentials such a local endpoint is signed with. One place,
//! so the four clients agree.

use crate::error_text::causes;
use aws_config::Region;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use std::time::Duration;

/// The region when nothing names one, as the AWS CLI's default.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The access key and secret a local endpoint is signed with when the
/// environment has no credentials.
pub const LOCAL_ACCESS_KEY: &str = "mqtrigger-local";
/// How long looking for credentials may take before a local endpoint gets
/// the dummy ones (a `credential_process` could hang).
const LOCAL_CREDENTIALS_WAIT: Duration = Duration::from_secs(2);

/// A server on this machine (127.0.0.0/8, `localhost`, `::1`) needs no
/// AWS account.
pub fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The region the environment names (AWS_REGION, then AWS_DEFAULT_REGION),
/// else [`DEFAULT_REGION`]: never the instance metadata service, which is
/// only on EC2 (elsewhere the SDK asks it, waits and warns).
pub fn environment_region() -> Region {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|r| r.trim().to_owned())
        .find(|r| !r.is_empty())
        .map(Region::new)
        .unwrap_or_else(|| Region::new(DEFAULT_REGION))
}

/// The ARN of a function that is not one of an AWS account's: a local
/// program, a `bootstrap` handler, a name no config defines. Account
/// 000000000000, as SAM and LocalStack name theirs, so that every such ARN
/// reads the same wherever mqtrigger shows or hands it out.
pub fn local_function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:000000000000:function:{name}")
}

/// Region for a local endpoint: the environment, then the profile; never IMDS.
pub fn local_region_chain(profile: Option<&str>) -> RegionProviderChain {
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(from_profile.build())
        .or_else(Region::new(DEFAULT_REGION))
}

/// Credentials for a local endpoint: the environment and the profile (the
/// configured one first), never IMDS; if they give none within
/// [`LOCAL_CREDENTIALS_WAIT`], the dummy `mqtrigger-local` ones.
pub async fn local_credentials(profile: Option<&str>) -> SharedCredentialsProvider {
    let mut from_profile = ProfileFileCredentialsProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    let from_env = EnvironmentVariableCredentialsProvider::new();
    let chain = match profile {
        Some(_) => CredentialsProviderChain::first_try("Profile", from_profile.build())
            .or_else("Environment", from_env),
        None => CredentialsProviderChain::first_try("Environment", from_env)
            .or_else("Profile", from_profile.build()),
    };
    match tokio::time::timeout(LOCAL_CREDENTIALS_WAIT, chain.provide_credentials()).await {
        Ok(Ok(_)) => SharedCredentialsProvider::new(chain),
        found => {
            let why = match found {
                Ok(Err(e)) => causes(&e),
                _ => format!("none within {LOCAL_CREDENTIALS_WAIT:?}"),
            };
            tracing::debug!(
                "no AWS credentials ({why}); signing for the local endpoint with dummy ones"
            );
            SharedCredentialsProvider::new(Credentials::new(
                LOCAL_ACCESS_KEY,
                LOCAL_ACCESS_KEY,
                None,
                None,
                "mqtrigger-local",
            ))
        }
    }
}

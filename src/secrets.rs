//! BASIC_AUTH secrets: from `[secrets]`, else from AWS Secrets Manager.
//!
//! Amazon MQ keeps a broker's credentials in Secrets Manager as
//! `{"username": …, "password": …}`; mqtrigger reads them the same way, keeps
//! them in memory, and reads them again when the broker refuses them (the
//! secret may have been rotated). A secret's value never goes into a log
//! line, an error or a response: errors name the secret's ARN only.

use crate::config::{Config, Secret, SecretsManagerSettings, is_secrets_manager_arn};
use crate::sync::Unpoisoned;
use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::config::Region;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The user must fix something (name, permissions, the secret's shape).
    #[error("{0}")]
    Config(String),
    /// Secrets Manager could not be reached; worth trying again.
    #[error("{0}")]
    Unavailable(String),
}

pub struct Secrets {
    inline: BTreeMap<String, Secret>,
    settings: SecretsManagerSettings,
    clients: Mutex<HashMap<String, aws_sdk_secretsmanager::Client>>,
    shared: OnceCell<aws_config::SdkConfig>,
    cache: Mutex<HashMap<String, Secret>>,
    /// Held while a secret is fetched: a mapping's consumer and its backlog
    /// probe that ask at once share one read of Secrets Manager.
    fetching: tokio::sync::Mutex<()>,
}

impl Secrets {
    pub fn new(config: &Config) -> Secrets {
        Secrets {
            inline: config.secrets.clone(),
            settings: config.secrets_manager.clone(),
            clients: Mutex::default(),
            shared: OnceCell::new(),
            cache: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The secret a BASIC_AUTH URI names.
    pub async fn get(&self, uri: &str) -> Result<Secret, SecretError> {
        if let Some(s) = self.inline.get(uri) {
            return Ok(s.clone());
        }
        if !is_secrets_manager_arn(uri) {
            return Err(SecretError::Config(format!(
                "BASIC_AUTH secret {uri} is not in [secrets]; add it there, or give the ARN of an AWS Secrets Manager secret"
            )));
        }
        if let Some(s) = self.lock_cache().get(uri) {
            return Ok(s.clone());
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have read it while this one waited.
        if let Some(s) = self.lock_cache().get(uri) {
            return Ok(s.clone());
        }
        let secret = self.fetch(uri).await?;
        self.lock_cache().insert(uri.to_owned(), secret.clone());
        Ok(secret)
    }

    /// The broker refused the credentials: read the secret again next time.
    /// False when it is not one that can change (a `[secrets]` entry).
    pub fn forget(&self, uri: &str) -> bool {
        self.lock_cache().remove(uri).is_some()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
        self.cache.locked()
    }

    async fn fetch(&self, arn: &str) -> Result<Secret, SecretError> {
        let client = self.client(arn).await;
        let answer = client.get_secret_value().secret_id(arn).send().await;
        let output = answer.map_err(|e| {
            let code = e.code().unwrap_or_default().to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            match (&e, code.as_str()) {
                (SdkError::ServiceError(_), "ResourceNotFoundException") => SecretError::Config(
                    format!("BASIC_AUTH secret {arn} is not in [secrets], and Secrets Manager has no such secret; check the URI for a typo"),
                ),
                (SdkError::ServiceError(_), "AccessDeniedException")
                | (SdkError::ServiceError(_), "UnrecognizedClientException") => {
                    SecretError::Config(format!(
                        "Secrets Manager refused to read {arn} ({code}); give mqtrigger's AWS identity secretsmanager:GetSecretValue on it"
                    ))
                }
                (SdkError::ServiceError(_), _) => SecretError::Config(format!(
                    "Secrets Manager could not read {arn}: {code} {message}"
                )),
                _ => {
                    let why = crate::error_text::causes(&e);
                    let text = format!(
                        "BASIC_AUTH secret {arn} is not in [secrets], so mqtrigger asked AWS Secrets Manager for it, which could not answer: {why}"
                    );
                    // No AWS identity will not come by waiting: the user
                    // must add the secret to [secrets] or give credentials.
                    if why.to_lowercase().contains("credential") {
                        SecretError::Config(format!(
                            "{text}; add the secret to [secrets], or give mqtrigger AWS credentials"
                        ))
                    } else {
                        SecretError::Unavailable(text)
                    }
                }
            }
        })?;
        let text = output.secret_string().ok_or_else(|| {
            SecretError::Config(format!(
                "secret {arn} has no SecretString; store {{\"username\": …, \"password\": …}} as text"
            ))
        })?;
        parse_secret(text).ok_or_else(|| {
            SecretError::Config(format!(
                "secret {arn} is not JSON with string fields \"username\" and \"password\" (as Amazon MQ stores it)"
            ))
        })
    }

    async fn client(&self, arn: &str) -> aws_sdk_secretsmanager::Client {
        // The secret's ARN says its region; one client per region.
        let region = arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .or_else(|| self.settings.region.clone());
        let key = region.clone().unwrap_or_default();
        if let Some(c) = self.clients.locked().get(&key) {
            return c.clone();
        }
        let shared = self.shared.get_or_init(|| self.load_shared()).await;
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(shared);
        if let Some(r) = region {
            builder = builder.region(Region::new(r));
        }
        if let Some(url) = &self.settings.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        let client = aws_sdk_secretsmanager::Client::from_conf(builder.build());
        self.clients.locked().insert(key, client.clone());
        client
    }

    async fn load_shared(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        let local = self
            .settings
            .endpoint_url
            .as_deref()
            .is_some_and(crate::aws::is_loopback);
        if local {
            loader = loader.credentials_provider(crate::aws::local_credentials(None).await);
            if self.settings.region.is_none() {
                loader = loader.region(Region::new(crate::aws::DEFAULT_REGION));
            }
        }
        loader.load().await
    }
}

fn parse_secret(text: &str) -> Option<Secret> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(Secret {
        username: value.get("username")?.as_str()?.to_owned(),
        password: value.get("password")?.as_str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_secrets_manager_cannot_give_is_named_in_one_line() {
        let config = Config {
            secrets_manager: SecretsManagerSettings {
                // Nothing listens there.
                endpoint_url: Some("http://127.0.0.1:9".into()),
                region: Some("us-east-1".into()),
            },
            ..Config::default()
        };
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:typo";
        let err = Secrets::new(&config).get(arn).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(arn) && text.contains("is not in [secrets]"),
            "{text}"
        );
        assert!(text.contains("Connection refused"), "says why: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(
            !text.contains("DispatchFailure(") && !text.contains(" { "),
            "no Debug dump: {text}"
        );
        assert!(text.len() < 600, "{} bytes: {text}", text.len());
    }

    #[test]
    fn amazon_mq_secrets_parse_and_other_shapes_do_not() {
        let s = parse_secret(r#"{"username":"app","password":"p@ss"}"#).unwrap();
        assert_eq!((s.username.as_str(), s.password.as_str()), ("app", "p@ss"));
        assert!(parse_secret(r#"{"user":"app","password":"x"}"#).is_none());
        assert!(parse_secret(r#"{"username":"app","password":5}"#).is_none());
        assert!(parse_secret("app:x").is_none());
    }
}

//! [`SecretStore`] over AWS Secrets Manager: `GetSecretValue` on read, `CreateSecret` or
//! `PutSecretValue` on write. Values are JSON objects in `SecretString`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_types::SdkConfig;

use switchboard::ports::{SecretError, SecretStore};
use switchboard::secrets::{CredentialRef, SecretValue};

/// A Secrets Manager client whose whole operation (3 s) ends well inside a data adapter's
/// call budget (5 s by default), so an outage is recorded (stale value or 503) rather than
/// cut off by the caller's deadline.
pub fn client_from_config(sdk: &SdkConfig) -> Client {
    let (timeouts, retries) = crate::within_a_call();
    let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .retry_config(retries)
        .build();
    Client::from_conf(conf)
}

#[derive(Clone, Debug)]
pub struct SecretsManagerStore {
    client: Client,
}

impl SecretsManagerStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

// Only the reference, the error code and the SDK's context: requests and responses carrying
// values are never formatted.
fn error<E>(op: &str, reference: &str, err: &SdkError<E>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown");
            let status = s.raw().status().as_u16();
            match code {
                "ResourceNotFoundException" => SecretError::NotFound(reference.to_owned()),
                "AccessDeniedException" | "AccessDenied" => SecretError::Invalid(format!(
                    "this deployment may not use secret '{reference}' (AccessDenied); it must be under the stack's prefix"
                )),
                "DecryptionFailure" | "InvalidRequestException" | "InvalidParameterException" => {
                    SecretError::Invalid(format!("secret '{reference}' cannot be used: {code}"))
                }
                _ => SecretError::Unavailable(format!(
                    "Secrets Manager {op} '{reference}': {code} (HTTP {status})"
                )),
            }
        }
        other => SecretError::Unavailable(format!(
            "Secrets Manager {op} '{reference}': {}",
            DisplayErrorContext(other)
        )),
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(reference.as_str())
            .send()
            .await
            .map_err(|e| error("GetSecretValue", reference.as_str(), &e))?;
        let Some(s) = out.secret_string() else {
            return Err(SecretError::Invalid(format!(
                "secret '{reference}' has no SecretString; store a JSON object"
            )));
        };
        SecretValue::from_secret_string(s)
            .map_err(|_| SecretError::Invalid(format!("secret '{reference}' is not a JSON object")))
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<CredentialRef, SecretError> {
        let text = value.to_secret_string();
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(&text)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("ResourceExistsException") =>
            {
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(&text)
                    .send()
                    .await
                    .map_err(|e| error("PutSecretValue", name, &e))?;
            }
            Err(e) => return Err(error("CreateSecret", name, &e)),
        }
        // The name, not the ARN: it survives delete and re-create and reads the same in config.
        CredentialRef::parse(name).map_err(SecretError::Invalid)
    }

    async fn update(
        &self,
        reference: &CredentialRef,
        value: &SecretValue,
    ) -> Result<(), SecretError> {
        self.client
            .put_secret_value()
            .secret_id(reference.as_str())
            .secret_string(value.to_secret_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error("PutSecretValue", reference.as_str(), &e))
    }
}

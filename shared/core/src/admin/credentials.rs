//! Credentials: values to the secret store, metadata to the registry.

use super::*;

impl AdminService {
    pub(super) async fn put_credential(
        &self,
        org: &OrgId,
        name: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        // Fixed messages only: a parser's message could quote the secret.
        const SHAPE: &str = "the body must be {\"value\": {…}, \"version\"?: n} with a non-empty object of string fields";
        let Value::Object(mut doc) = serde_json::from_slice::<Value>(body)
            .map_err(|_| Error::invalid_request("the body is not valid JSON"))?
        else {
            return Err(Error::invalid_field("", SHAPE));
        };
        let version =
            match doc.remove("version") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    Error::invalid_field("/version", "must be a positive integer")
                })?),
            };
        let value = match (doc.remove("value"), doc.is_empty()) {
            (Some(Value::Object(m)), true) if !m.is_empty() => m,
            _ => return Err(Error::invalid_field("/value", SHAPE)),
        };
        let expected = expected_version(if_match, version)?;
        if !crate::ids::is_valid_name(name) {
            return Err(Error::invalid_request(
                "a credential name is 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'",
            ));
        }
        let current = self.registry.get_credential_versioned(org, name).await?;
        check_version(&current, expected, &format!("credential {name}"))?;
        let secret = SecretValue::new(value);
        let meta = CredentialMeta {
            name: name.to_owned(),
            reference: self.secrets.name_for(org, name),
            updated: (self.clock)(),
            fields: secret_fields(&secret),
        };
        // The conditional registry write is the lock: of two writers holding one version,
        // only the winner goes on to write the secret, so the loser's 409 means "not applied".
        let version = self
            .registry
            .put_credential(org, &meta, current.as_ref().map(|c| c.version))
            .await?;
        if let Err(e) = self.secrets.store(org, name, &secret).await {
            // Put the previous metadata back (as a new version) so it describes what is stored.
            let restore = match &current {
                Some(c) => self
                    .registry
                    .put_credential(org, &c.value, Some(version))
                    .await
                    .map(|_| ()),
                None => self.registry.delete_credential(org, name, version).await,
            };
            if let Err(r) = restore {
                tracing::error!(credential = name, error = %r, "could not restore credential metadata");
            }
            return Err(e);
        }
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: meta,
                version,
            }),
        )
    }
}

//! `--secret`'s session service (`moby.buildkit.secrets.v1.Secrets/GetSecret`): BuildKit asks for
//! a secret by ID when a `RUN --mount=type=secret` runs, and we answer with the value read then
//! (as buildx: a file is read at that moment, an environment variable too). The value goes only
//! into the answer: never into the solve, a log, or an error.
use std::{collections::HashMap, path::PathBuf, sync::Arc};

use bollard_buildkit_proto::moby::buildkit::secrets::v1::{
    secrets_server::{Secrets, SecretsServer},
    GetSecretRequest, GetSecretResponse,
};
use tonic::{Request, Response, Status};

/// The largest secret BuildKit takes, as buildx checks it (500 KiB).
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// Where a secret's value is read when BuildKit asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, read whole.
    File(PathBuf),
    /// An environment variable of ours (empty when unset by then, as buildx).
    Env(String),
}

/// The secrets a build offers, by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretStore {
    /// Each ID's source.
    pub sources: HashMap<String, SecretSource>,
}

impl SecretStore {
    /// The session service that answers BuildKit's requests.
    pub(crate) fn server(&self) -> SecretsServer<SecretsService> {
        SecretsServer::new(SecretsService { sources: Arc::new(self.sources.clone()) })
    }
}

pub(crate) struct SecretsService {
    sources: Arc<HashMap<String, SecretSource>>,
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        // NotFound lets BuildKit skip an optional mount (the default), and fail a required one.
        let Some(source) = self.sources.get(&id).cloned() else {
            return Err(Status::not_found(format!("secret {id}: not found")));
        };
        let data = match source {
            SecretSource::File(path) => tokio::fs::read(&path)
                .await
                .map_err(|e| Status::not_found(format!("secret {id}: could not read {}: {e}", path.display())))?,
            SecretSource::Env(name) => std::env::var_os(&name).map(|v| v.into_encoded_bytes()).unwrap_or_default(),
        };
        if data.len() as u64 > MAX_SECRET_SIZE {
            return Err(Status::invalid_argument(format!("invalid secret size {}", data.len())));
        }
        Ok(Response::new(GetSecretResponse { data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_known_id_answers_its_value_read_then_and_an_unknown_one_not_found() {
        let dir = std::env::temp_dir().join(format!("assemble-secrets-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "first").unwrap();
        let store = SecretStore {
            sources: HashMap::from([
                ("tok".to_string(), SecretSource::File(file.clone())),
                ("env".to_string(), SecretSource::Env("ASSEMBLE_SECRETS_TEST_UNSET_VAR".into())),
            ]),
        };
        let service = SecretsService { sources: Arc::new(store.sources.clone()) };
        let ask = |id: &str| Request::new(GetSecretRequest { id: id.into(), annotations: HashMap::new() });
        std::fs::write(&file, "second").unwrap();
        assert_eq!(service.get_secret(ask("tok")).await.unwrap().into_inner().data, b"second");
        assert!(service.get_secret(ask("env")).await.unwrap().into_inner().data.is_empty());
        let missing = service.get_secret(ask("nope")).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        std::fs::write(&file, vec![b'x'; MAX_SECRET_SIZE as usize + 1]).unwrap();
        assert_eq!(service.get_secret(ask("tok")).await.unwrap_err().code(), tonic::Code::InvalidArgument);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

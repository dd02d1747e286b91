//! The SLSA provenance BuildKit recorded for a build, read as buildx reads it for
//! `buildx.build.provenance` in `--metadata-file`: the attestation's descriptor from the build's
//! history record, its bytes from the daemon's own content store (containerd's content API, which
//! buildkitd serves beside its control API).
use bollard_buildkit_proto::moby::buildkit::v1::{BuildHistoryRequest, BuildResultInfo};
use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::buildkit::{
    content::proto::{ReadContentRequest, ReadContentResponse},
    error::BuildkitError,
    filesend::RawCodec,
    status_error, BuildkitClient,
};
use crate::Result;

/// The in-toto statements' media type, and the predicate type's start that marks SLSA provenance.
const IN_TOTO: &str = "application/vnd.in-toto+json";
const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/";
/// The largest provenance read (BuildKit's are a few KiB; `mode=max` with many steps a few MiB).
const MAX_PROVENANCE: i64 = 64 * 1024 * 1024;

/// One recorded provenance: the platform it is for (several-platform builds record one each),
/// and the predicate's bytes.
pub struct RecordedProvenance {
    /// The platform (BuildKit's key in the record), for a build of several.
    pub platform: Option<String>,
    /// The predicate's JSON, as recorded.
    pub predicate: Vec<u8>,
}

impl BuildkitClient {
    /// The provenance recorded for build `reference`; empty when it attested none.
    pub async fn recorded_provenance(&self, reference: &str) -> Result<Vec<RecordedProvenance>> {
        let request = BuildHistoryRequest { r#ref: reference.to_string(), early_exit: true, ..Default::default() };
        let mut events = self
            .control()
            .listen_build_history(request)
            .await
            .map_err(status_error("read the build's record"))?
            .into_inner();
        let mut wanted: Vec<(Option<String>, String, i64)> = Vec::new();
        while let Some(event) = events.next().await {
            let Some(record) = event.map_err(status_error("read the build's record"))?.record else { continue };
            // As buildx: the one result, else one per platform.
            let found: Vec<(Option<String>, (String, i64))> = match &record.result {
                Some(result) => lookup(result).map(|d| (None, d)).into_iter().collect(),
                None => record
                    .results
                    .iter()
                    .filter_map(|(platform, result)| lookup(result).map(|d| (Some(platform.clone()), d)))
                    .collect(),
            };
            wanted.retain(|(platform, ..)| !found.iter().any(|(p, _)| p == platform));
            wanted.extend(found.into_iter().map(|(platform, (digest, size))| (platform, digest, size)));
        }
        let mut out = Vec::new();
        for (platform, digest, size) in wanted {
            out.push(RecordedProvenance { platform, predicate: self.read_blob(&digest, size).await? });
        }
        Ok(out)
    }

    /// A blob of the daemon's content store, checked against its digest.
    async fn read_blob(&self, digest: &str, size: i64) -> Result<Vec<u8>> {
        if !(0..=MAX_PROVENANCE).contains(&size) {
            return Err(
                BuildkitError::Unreachable(format!("the provenance {digest} is {size} bytes, over the limit")).into()
            );
        }
        let mut grpc = tonic::client::Grpc::new(self.channel());
        grpc.ready().await.map_err(|e| BuildkitError::Unreachable(e.to_string()))?;
        let request = ReadContentRequest { digest: digest.to_string(), offset: 0, size: 0 };
        let path = http::uri::PathAndQuery::from_static("/containerd.services.content.v1.Content/Read");
        let mut stream = grpc
            .server_streaming(tonic::Request::new(Bytes::from(request.encode_to_vec())), path, RawCodec)
            .await
            .map_err(status_error("read the provenance"))?
            .into_inner();
        let mut data = Vec::with_capacity(size as usize);
        while let Some(message) = stream.next().await {
            let message = message.map_err(status_error("read the provenance"))?;
            let chunk = ReadContentResponse::decode(message)
                .map_err(|e| BuildkitError::Unreachable(format!("BuildKit's content answer could not be read: {e}")))?;
            data.extend_from_slice(&chunk.data);
            if data.len() as i64 > size {
                break;
            }
        }
        let actual = format!("sha256:{:x}", Sha256::digest(&data));
        if data.len() as i64 != size || actual != digest {
            return Err(BuildkitError::Unreachable(format!(
                "BuildKit's content store gave {} bytes with digest {actual} for {digest} ({size} bytes)",
                data.len()
            ))
            .into());
        }
        Ok(data)
    }
}

/// The SLSA provenance among a result's attestations: its digest and size.
fn lookup(result: &BuildResultInfo) -> Option<(String, i64)> {
    result
        .attestations
        .iter()
        .find(|a| {
            a.media_type == IN_TOTO
                && a.annotations.get("in-toto.io/predicate-type").is_some_and(|t| t.starts_with(SLSA_PROVENANCE))
        })
        .map(|a| (a.digest.clone(), a.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::moby::buildkit::v1::Descriptor;

    #[test]
    fn the_provenance_is_the_in_toto_attestation_whose_predicate_is_slsa() {
        let descriptor = |media: &str, predicate: &str, digest: &str| Descriptor {
            media_type: media.into(),
            digest: digest.into(),
            size: 3,
            annotations: [("in-toto.io/predicate-type".to_string(), predicate.to_string())].into(),
        };
        let result = BuildResultInfo {
            attestations: vec![
                descriptor(IN_TOTO, "https://spdx.dev/Document", "sha256:sbom"),
                descriptor("application/json", "https://slsa.dev/provenance/v0.2", "sha256:other"),
                descriptor(IN_TOTO, "https://slsa.dev/provenance/v0.2", "sha256:prov"),
            ],
            ..Default::default()
        };
        assert_eq!(lookup(&result), Some(("sha256:prov".to_string(), 3)));
        assert_eq!(lookup(&BuildResultInfo::default()), None);
    }
}

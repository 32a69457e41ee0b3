//! What the local cloud counts and reads on its own, so that `make run` resumes after a restart
//! as a deployed stack never stops: each event source mapping's checkpoint in each shard (Lambda
//! keeps it for the mapping), how far the EMF extraction has read each log stream (CloudWatch
//! extracts each event once), and each API key's use of its quota (the usage plan's). AWS keeps
//! this state out of sight; here the local endpoint keeps it (`/_books/emulator-state`,
//! docs/local-endpoint-protocol.md) and saves it in the same file as the tables, streams and
//! log groups it describes, so the two always agree.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use crate::gateway::QuotaUsage;
use crate::http_util;

/// The local endpoint's path for it.
pub(crate) const PATH: &str = "/_books/emulator-state";

/// The readers' positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    /// Per event source mapping (its UUID), per shard, the sequence number of the last record
    /// handled.
    #[serde(default)]
    pub streams: BTreeMap<String, BTreeMap<String, String>>,
    /// Per log group, per log stream, the token after the last event read.
    #[serde(default)]
    pub logs: BTreeMap<String, BTreeMap<String, String>>,
    /// Per API key id, its use of its usage plan's quota.
    #[serde(default)]
    pub quotas: BTreeMap<String, QuotaUsage>,
}

impl Positions {
    /// What the endpoint at `endpoint` keeps; empty when it keeps nothing (a first start) or is
    /// not our local endpoint (a plain moto server answers 404).
    pub async fn load(endpoint: &str) -> Result<Self, PositionsError> {
        let (uri, status, body) = request(http::Method::GET, endpoint, Bytes::new()).await?;
        match status {
            200 => serde_json::from_slice(&body).map_err(|source| PositionsError::Unreadable { uri, source }),
            404 => Ok(Self::default()),
            status => Err(PositionsError::Refused { uri, status, body: String::from_utf8_lossy(&body).into_owned() }),
        }
    }

    /// Hands the positions to the endpoint, which saves them with its state.
    pub async fn save(&self, endpoint: &str) -> Result<(), PositionsError> {
        // Maps of strings and numbers: they always serialise.
        let body = serde_json::to_vec(self).unwrap_or_default();
        match request(http::Method::PUT, endpoint, body.into()).await? {
            (_, 200, _) => Ok(()),
            (uri, status, body) => {
                Err(PositionsError::Refused { uri, status, body: String::from_utf8_lossy(&body).into_owned() })
            }
        }
    }
}

/// Why the positions could not be read from, or handed to, the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// No answer.
    #[error("{uri}: {source}")]
    Unreachable {
        /// Where.
        uri: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An answer other than 200 (or 404 when reading).
    #[error("{uri} answered {status}: {body}")]
    Refused {
        /// Where.
        uri: String,
        /// The status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// A body that is not the positions.
    #[error("{uri}: {source}")]
    Unreadable {
        /// Where.
        uri: String,
        /// Why.
        source: serde_json::Error,
    },
}

async fn request(method: http::Method, endpoint: &str, body: Bytes) -> Result<(String, u16, Bytes), PositionsError> {
    let uri = format!("{}{PATH}", endpoint.trim_end_matches('/'));
    let unreachable = |uri: &str, source: Box<dyn std::error::Error + Send + Sync>| PositionsError::Unreachable {
        uri: uri.to_owned(),
        source,
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(&uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| unreachable(&uri, e.into()))?;
    let response = http_util::client().request(request).await.map_err(|e| unreachable(&uri, e.into()))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| unreachable(&uri, e.into()))?.to_bytes();
    Ok((uri, status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_state_reads_and_writes_back_as_the_page_has_it() {
        let page = crate::endpoint_contract::example("emulator-state");
        let positions: Positions = serde_json::from_value(page.clone()).expect("the page's state is Positions");
        assert_eq!(positions.quotas["k2x9a7q1"].used, 1234);
        assert_eq!(serde_json::to_value(&positions).expect("positions serialise"), page);
    }
}

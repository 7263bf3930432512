//! The StoreAPI endpoints a querier talks to, and what their last `Info` call said.
//!
//! Every configured endpoint stays in the set even while it is down (like Thanos's
//! `--endpoint-strict`): a query still fans out to it, so that its failure shows up as a
//! partial-response warning (or an error) instead of silently missing data.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hypnos_model::{Labels, Matcher};
use hypnos_storepb::StoreApi;
use hypnos_storepb::client::GrpcStore;
use hypnos_storepb::convert::label_set_from_proto;

/// What an endpoint said about itself in its last successful `Info` answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointInfo {
    pub component_type: String,
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
}

/// The state of one endpoint as the poller last saw it.
#[derive(Clone, Debug, Default)]
pub struct EndpointStatus {
    pub info: Option<EndpointInfo>,
    pub last_check: Option<SystemTime>,
    pub last_error: Option<String>,
}

pub struct Endpoint {
    pub addr: String,
    pub api: Arc<dyn StoreApi>,
    /// A second client of the same store on its own connection, for the second half of a
    /// request split by time. Two streams read at the pace of one merge must not share an
    /// HTTP/2 connection: the unread answer of one fills the connection's flow-control
    /// window and the other, which the merge waits for, stalls for good.
    pub second_lane: Option<Arc<dyn StoreApi>>,
    status: RwLock<EndpointStatus>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("addr", &self.addr).finish()
    }
}

impl Endpoint {
    pub fn new(addr: impl Into<String>, api: Arc<dyn StoreApi>) -> Self {
        Endpoint {
            addr: addr.into(),
            api,
            second_lane: None,
            status: RwLock::new(EndpointStatus::default()),
        }
    }

    /// With a second client on its own connection (see [`Endpoint::second_lane`]).
    pub fn with_second_lane(mut self, api: Arc<dyn StoreApi>) -> Self {
        self.second_lane = Some(api);
        self
    }

    pub fn status(&self) -> EndpointStatus {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_status(&self, status: EndpointStatus) {
        if let Ok(mut s) = self.status.write() {
            *s = status;
        }
    }

    /// Calls `Info` once and records the answer or the error.
    pub async fn refresh(&self, timeout: Duration) {
        let res = tokio::time::timeout(timeout, self.api.info()).await;
        let mut status = self.status();
        status.last_check = Some(SystemTime::now());
        match res {
            Ok(Ok(info)) => {
                let (min_time, max_time) = info
                    .store
                    .as_ref()
                    .map_or((i64::MIN, i64::MAX), |s| (s.min_time, s.max_time));
                status.info = Some(EndpointInfo {
                    component_type: info.component_type.clone(),
                    label_sets: info.label_sets.into_iter().map(label_set_from_proto).collect(),
                    min_time,
                    max_time,
                });
                status.last_error = None;
            }
            Ok(Err(e)) => {
                tracing::debug!(endpoint = %self.addr, error = %e, "Info call failed");
                status.last_error = Some(format!("rpc error: code = {:?} desc = {}", e.code(), e.message()));
            }
            Err(_) => {
                status.last_error = Some(format!("Info call to {} timed out after {timeout:?}", self.addr));
            }
        }
        self.set_status(status);
    }

    /// Whether this endpoint may hold data for the time range and matchers (Thanos's
    /// `storeMatches`). Endpoints we know nothing about yet are always asked.
    pub fn matches(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> bool {
        let Some(info) = self.status().info else {
            return true;
        };
        if mint > info.max_time || maxt < info.min_time {
            return false;
        }
        label_sets_match(&info.label_sets, matchers)
    }
}

/// A store passes if it has no label sets or any of them is compatible: a label set is
/// incompatible only when it has a matcher's label and the value fails the matcher.
pub fn label_sets_match(sets: &[Labels], matchers: &[Matcher]) -> bool {
    if sets.is_empty() {
        return true;
    }
    sets.iter()
        .any(|set| matchers.iter().all(|m| set.get(&m.name).is_none_or(|v| m.matches(v))))
}

/// All endpoints of a querier.
#[derive(Debug, Default)]
pub struct EndpointSet {
    pub endpoints: Vec<Arc<Endpoint>>,
}

impl EndpointSet {
    /// Lazily connecting gRPC clients for `addrs`; bad addresses are errors.
    pub fn connect(addrs: &[String]) -> Result<Self, hypnos_storepb::client::ClientError> {
        let mut endpoints = Vec::new();
        for a in addrs {
            let store = GrpcStore::connect_lazy(a)?;
            // Lazy: the second connection is opened by the first request split by time.
            let second = GrpcStore::connect_lazy(a)?;
            endpoints.push(Arc::new(
                Endpoint::new(a.clone(), Arc::new(store)).with_second_lane(Arc::new(second)),
            ));
        }
        Ok(EndpointSet { endpoints })
    }

    pub fn from_endpoints(endpoints: Vec<Arc<Endpoint>>) -> Self {
        EndpointSet { endpoints }
    }

    /// Refreshes every endpoint's Info concurrently.
    pub async fn refresh_all(&self, timeout: Duration) {
        futures::future::join_all(self.endpoints.iter().map(|e| e.refresh(timeout))).await;
    }

    /// Refreshes forever every `interval`.
    pub async fn poll(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh_all(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypnos_model::MatchOp;

    #[test]
    fn missing_label_does_not_exclude_a_store() {
        let sets = vec![Labels::from_pairs([("cluster", "eu")])];
        assert!(label_sets_match(&sets, &[Matcher::equal("job", "x")]));
        assert!(label_sets_match(&sets, &[Matcher::equal("cluster", "eu")]));
        assert!(!label_sets_match(&sets, &[Matcher::equal("cluster", "us")]));
        let re = Matcher::new(MatchOp::RegexMatch, "cluster", "e.*").unwrap();
        assert!(label_sets_match(&sets, &[re]));
        assert!(label_sets_match(&[], &[Matcher::equal("cluster", "us")]));
    }
}

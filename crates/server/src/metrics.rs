//! Prometheus metrics, kept by hand: a few counters and one latency histogram are all the
//! server needs, and they should cost an atomic add, not a registry lookup.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::channels::ChannelFigures;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    /// (service, operation, outcome code) → count.
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn record(&self, service: &str, operation: &str, code: &str, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((service.to_owned(), operation.to_owned(), code.to_owned()))
                .or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format: the API's figures and the channels'.
    pub fn render(&self, channels: &ChannelFigures) -> String {
        let mut out = String::new();
        out.push_str("# HELP portcullis_api_requests_total AWS API requests by service, operation and outcome.\n");
        out.push_str("# TYPE portcullis_api_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((service, operation, code), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "portcullis_api_requests_total{{service=\"{}\",operation=\"{}\",code=\"{}\"}} {n}",
                    escape(service),
                    escape(operation),
                    escape(code)
                );
            }
        }
        out.push_str("# HELP portcullis_api_request_seconds Time to answer an AWS API request.\n");
        out.push_str("# TYPE portcullis_api_request_seconds histogram\n");
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "portcullis_api_request_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "portcullis_api_request_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "portcullis_api_request_seconds_sum {sum}");
        let _ = writeln!(out, "portcullis_api_request_seconds_count {count}");
        render_channels(&mut out, channels);
        out
    }
}

fn render_channels(out: &mut String, c: &ChannelFigures) {
    let single = [
        (
            "portcullis_agents_connected",
            "gauge",
            "Nodes whose agent holds a control channel to this server.",
            c.agents_connected,
        ),
        (
            "portcullis_session_clients_attached",
            "gauge",
            "Sessions with a client data channel attached.",
            c.clients_attached,
        ),
        (
            "portcullis_session_agents_attached",
            "gauge",
            "Sessions with the agent's data channel attached.",
            c.agent_channels_attached,
        ),
        (
            "portcullis_data_channels_refused_total",
            "counter",
            "Client data channels refused: no, a used, an expired or another session's token.",
            c.refused_data_channels,
        ),
        (
            "portcullis_session_log_bytes_total",
            "counter",
            "Bytes of session output written to session logs.",
            c.session_log_bytes,
        ),
        (
            "portcullis_session_log_write_failures_total",
            "counter",
            "Session log writes that failed (each stops its session's log; the session goes on).",
            c.session_log_failures,
        ),
    ];
    for (name, kind, help, value) in single {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let relayed = [
        (
            "portcullis_relayed_frames_total",
            "Session Manager frames relayed, by direction.",
            c.frames_to_agent,
            c.frames_to_client,
        ),
        (
            "portcullis_relayed_bytes_total",
            "Bytes of Session Manager frames relayed, by direction.",
            c.bytes_to_agent,
            c.bytes_to_client,
        ),
    ];
    for (name, help, to_agent, to_client) in relayed {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n\
             {name}{{direction=\"to_agent\"}} {to_agent}\n\
             {name}{{direction=\"to_client\"}} {to_client}"
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.record("ssm", "StartSession", "200", Duration::from_micros(700));
        m.record(
            "ssm",
            "StartSession",
            "AccessDeniedException",
            Duration::from_millis(3),
        );
        let text = m.render(&ChannelFigures::default());
        assert!(text.contains("portcullis_api_requests_total{service=\"ssm\",operation=\"StartSession\",code=\"200\"} 1"));
        assert!(text.contains("portcullis_api_request_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("portcullis_api_request_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("portcullis_api_request_seconds_count 2"));
    }

    #[test]
    fn renders_the_channels() {
        let figures = ChannelFigures {
            agents_connected: 2,
            clients_attached: 1,
            agent_channels_attached: 3,
            frames_to_agent: 10,
            bytes_to_agent: 1200,
            frames_to_client: 20,
            bytes_to_client: 64_000,
            refused_data_channels: 4,
            session_log_bytes: 5000,
            session_log_failures: 1,
        };
        let text = Metrics::default().render(&figures);
        for line in [
            "# TYPE portcullis_agents_connected gauge",
            "portcullis_agents_connected 2",
            "portcullis_session_clients_attached 1",
            "portcullis_session_agents_attached 3",
            "# TYPE portcullis_relayed_frames_total counter",
            "portcullis_relayed_frames_total{direction=\"to_agent\"} 10",
            "portcullis_relayed_frames_total{direction=\"to_client\"} 20",
            "portcullis_relayed_bytes_total{direction=\"to_agent\"} 1200",
            "portcullis_relayed_bytes_total{direction=\"to_client\"} 64000",
            "portcullis_data_channels_refused_total 4",
            "portcullis_session_log_bytes_total 5000",
            "portcullis_session_log_write_failures_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // Every sample line is `name[{labels}] value` (what Prometheus parses).
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = l.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}

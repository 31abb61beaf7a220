//! Structured log output on stderr: human-readable lines or JSON, per `[log]`, each naming
//! the node that wrote it (`[cluster] node`), so the logs of several nodes can be merged.
//!
//! `RUST_LOG`, when set, overrides the configured level. Nothing here ever sees a
//! secret: secrets are `Secret<T>` and print as `[redacted]`.

use std::fmt;

use postfach_types::NodeName;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber; a second call is a no-op. Colours only when stderr is
/// a terminal: files, pipes and the journal get plain text.
pub fn init(log: &Log, node: &NodeName) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match log.format {
        LogFormat::Json => {
            builder.json().event_format(JsonWithNode(node.clone(), tracing_subscriber::fmt::format().json())).try_init()
        }
        LogFormat::Text => builder.with_timer(TimeAndNode(node.clone())).try_init(),
    };
}

/// Text lines: the time, then `node=NAME`, then the usual level, target and fields.
struct TimeAndNode(NodeName);

impl FormatTime for TimeAndNode {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " node={}", self.0)
    }
}

/// JSON lines: `"node":"NAME"` first, then the usual fields. A node name needs no JSON
/// escaping (letters, digits, `-`, `_`, `.`).
struct JsonWithNode<F>(NodeName, F);

impl<S, N, F> FormatEvent<S, N> for JsonWithNode<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
    FormattedFields<N>: Send + Sync,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.1.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"node\":\"{}\",{rest}", self.0),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(format: LogFormat) -> String {
        let node = NodeName::parse("mail-2").expect("node");
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        let dispatch = match format {
            LogFormat::Json => tracing::Dispatch::new(
                builder.json().event_format(JsonWithNode(node, tracing_subscriber::fmt::format().json())).finish(),
            ),
            LogFormat::Text => tracing::Dispatch::new(builder.with_timer(TimeAndNode(node)).finish()),
        };
        tracing::dispatcher::with_default(&dispatch, || tracing::info!(queue_id = "Q1", "delivered"));
        String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8")
    }

    #[test]
    fn every_line_names_the_node() {
        let text = lines(LogFormat::Text);
        assert!(text.contains(" node=mail-2 ") && text.contains("delivered queue_id=\"Q1\""), "{text}");
        let json: serde_json::Value = serde_json::from_str(lines(LogFormat::Json).trim()).expect("one JSON line");
        assert_eq!(json["node"], "mail-2");
        assert_eq!(json["fields"]["message"], "delivered");
        assert_eq!(json["fields"]["queue_id"], "Q1");
    }
}

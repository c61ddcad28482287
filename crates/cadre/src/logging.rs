//! Log lines on standard error: JSON (one object a line, for collectors) or
//! text (for a person at a terminal). Every line carries the fields of the
//! spans it happened in — so a line logged while serving a request carries
//! its `request_id` — and fields whose names mark secrets (SPEC §9) are
//! written as `[REDACTED]`, whatever the code that logged them intended.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};

use cadre_config::{LogConfig, LogFormat, TelemetryConfig};
use cadre_types::redact::{REDACTED, is_sensitive};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global logger, and the OpenTelemetry exporter when
/// `telemetry.otlp_endpoint` is set (the returned provider flushes it: shut
/// it down before exiting). Fails, naming the key, when `log.level` is not a
/// valid filter or the exporter cannot be built.
pub fn init(
    config: &LogConfig,
    telemetry: &TelemetryConfig,
) -> Result<Option<SdkTracerProvider>, cadre_config::ConfigError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| invalid_level(&config.level, &e))?;
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let provider = tracer_provider(telemetry)?;
    // Our own spans (requests, jobs, agent steps), not every library's.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("cadre"))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target().starts_with("cadre")
            }))
    });
    // A second init (tests start several apps in one process) keeps the first.
    let _already_set = tracing_subscriber::registry()
        .with(
            RedactingLayer {
                json,
                sink: Sink::Stderr,
            }
            .with_filter(filter),
        )
        .with(otel)
        .try_init();
    Ok(provider)
}

/// The OTLP/HTTP exporter behind a batching provider (its own thread).
fn tracer_provider(
    telemetry: &TelemetryConfig,
) -> Result<Option<SdkTracerProvider>, cadre_config::ConfigError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let base = telemetry.otlp_endpoint.trim_end_matches('/');
    if base.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .map_err(|e| cadre_config::ConfigError {
            problems: vec![cadre_config::Problem {
                key: "telemetry.otlp_endpoint".into(),
                value: format!("{base:?}"),
                allowed: format!("a reachable OTLP/HTTP collector URL ({e})"),
                source: None,
            }],
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(telemetry.service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

fn invalid_level(level: &str, err: &dyn std::fmt::Display) -> cadre_config::ConfigError {
    cadre_config::ConfigError {
        problems: vec![cadre_config::Problem {
            key: "log.level".into(),
            value: format!("{level:?}"),
            allowed: format!(
                "error, warn, info, debug, trace, or a filter such as \"info,cadre_store=debug\" ({err})"
            ),
            source: None,
        }],
    }
}

/// Writes events as single lines with span fields merged in and secrets hidden.
pub struct RedactingLayer {
    json: bool,
    sink: Sink,
}

/// Where finished lines go.
enum Sink {
    Stderr,
    #[cfg(test)]
    Memory(std::sync::Arc<std::sync::Mutex<Vec<String>>>),
}

impl Sink {
    fn write(&self, line: &str) {
        match self {
            // One write per line so concurrent lines never interleave.
            Sink::Stderr => {
                let _ignored = std::io::stderr().lock().write_all(line.as_bytes());
            }
            #[cfg(test)]
            Sink::Memory(lines) => lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line.to_owned()),
        }
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for RedactingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = FieldVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(existing)) = ext.get_mut::<SpanFields>() {
                let mut fields = FieldVisitor::default();
                values.record(&mut fields);
                existing.extend(fields.fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        let mut context = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    context.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let meta = event.metadata();
        let line = if self.json {
            json_line(meta, visitor, context)
        } else {
            text_line(meta, visitor, context)
        };
        self.sink.write(&line);
    }
}

fn json_line(
    meta: &tracing::Metadata<'_>,
    visitor: FieldVisitor,
    context: BTreeMap<String, Value>,
) -> String {
    let mut object = Map::new();
    object.insert(
        "timestamp".into(),
        Value::String(cadre_types::time::rfc3339(cadre_types::time::now())),
    );
    object.insert(
        "level".into(),
        Value::String(meta.level().as_str().to_owned()),
    );
    object.insert("target".into(), Value::String(meta.target().to_owned()));
    object.insert(
        "message".into(),
        Value::String(visitor.message.unwrap_or_default()),
    );
    object.extend(context);
    object.extend(visitor.fields);
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    line
}

fn text_line(
    meta: &tracing::Metadata<'_>,
    visitor: FieldVisitor,
    context: BTreeMap<String, Value>,
) -> String {
    let mut line = format!(
        "{} {:>5} {}: {}",
        cadre_types::time::rfc3339(cadre_types::time::now()),
        meta.level().as_str(),
        meta.target(),
        visitor.message.unwrap_or_default()
    );
    for (k, v) in context.iter().chain(visitor.fields.iter()) {
        match v {
            Value::String(s) => {
                let _ = write!(line, " {k}={s}");
            }
            other => {
                let _ = write!(line, " {k}={other}");
            }
        }
    }
    line.push('\n');
    line
}

#[derive(Default)]
struct FieldVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if is_sensitive(name) {
            self.fields
                .insert(name.to_owned(), Value::String(REDACTED.to_owned()));
        } else {
            self.fields.insert(name.to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn capture(json: bool, f: impl FnOnce()) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let layer = RedactingLayer {
            json,
            sink: Sink::Memory(Arc::clone(&lines)),
        };
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        lines.lock().unwrap().clone()
    }

    #[test]
    fn json_lines_carry_span_fields_and_hide_secrets() {
        let lines = capture(true, || {
            let span = tracing::info_span!("request", request_id = "req-1");
            let _entered = span.enter();
            tracing::info!(
                password = "hunter22",
                api_key = "cdr_abc",
                email = "a@b.c",
                "signed in"
            );
        });
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["message"], "signed in");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["email"], "a@b.c");
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["api_key"], REDACTED);
        assert!(
            !lines[0].contains("hunter22") && !lines[0].contains("cdr_abc"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn text_lines_hide_secrets_too() {
        let lines = capture(false, || {
            tracing::warn!(refresh_token = "rt_secret", user = "u1", "token refreshed")
        });
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("WARN")
                && lines[0].contains("token refreshed")
                && lines[0].contains("user=u1"),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains("rt_secret"), "{}", lines[0]);
    }

    #[test]
    fn an_invalid_level_names_the_key() {
        let err = init(
            &LogConfig {
                level: "info,=[".into(),
                format: LogFormat::Json,
            },
            &TelemetryConfig {
                otlp_endpoint: String::new(),
                service_name: "cadre".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`log.level`"), "{err}");
    }
}

//! The human-readable end-of-run summary, with loud lines for what must not be missed:
//! correctness failures, local limits, failed runs.

use std::fmt::Write;

use crate::latency::Percentiles;
use crate::report::{Report, Verdict};

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let c = &r.connections;
    let _ = writeln!(
        w,
        "switchboard-loadtest {} — run {}, {}, {} worker(s), {:.1} s measured after {:.1} s warm-up ({:.1} s wall)",
        r.scenario, r.run_id, encoding(r), r.workers, r.duration_secs, r.warmup_secs, r.wall_secs
    );
    let _ = writeln!(
        w,
        "connections  {} ok, {} failed ({} local limit) of {} in {:.2} s = {:.0}/s; connect {}",
        c.ok,
        c.failed,
        c.local_limit,
        c.planned,
        c.ramp_secs,
        c.connect_per_sec,
        brief(&c.connect_latency_ms)
    );
    if r.publish_attempts > 0 {
        let _ = writeln!(
            w,
            "published    {} acked of {} sent ({:.1}/s in window); ack {}",
            r.published,
            r.publish_attempts,
            r.sent_per_sec,
            brief(&r.ack_latency_ms)
        );
        let _ = writeln!(
            w,
            "delivered    {} of {} expected ({:.1}/s in window)",
            r.delivered, r.expected, r.delivered_per_sec
        );
        let l = &r.latency_ms;
        let _ = writeln!(
            w,
            "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        );
    }
    let _ = writeln!(
        w,
        "correctness  lost {}  duplicates {}  out_of_order {}  seq_regressions {}",
        r.lost, r.duplicates, r.out_of_order, r.seq_regressions
    );
    if let Some(chat) = &r.chat {
        let l = &chat.latency_ms;
        let _ = writeln!(
            w,
            "chat probe   {} acked of {} sent; ack {}; delivered {} of {} expected; latency p50 {:.2}  p99 {:.2}  max {:.2} ms (n={}); lost {}  duplicates {}  out_of_order {}  seq_regressions {}",
            chat.published,
            chat.publish_attempts,
            brief(&chat.ack_latency_ms),
            chat.delivered,
            chat.expected,
            l.p50,
            l.p99,
            l.max,
            l.count,
            chat.lost,
            chat.duplicates,
            chat.out_of_order,
            chat.seq_regressions
        );
    }
    if let Some(l) = &r.lifecycle {
        let refused = if l.refused.is_empty() {
            "none".to_owned()
        } else {
            counts(&l.refused)
        };
        let actions = crate::stats::action_names()
            .filter_map(|name| l.actions.get(name).map(|a| (name, a)))
            .map(|(name, a)| format!("{name} {}/{}", a.stored + a.unchanged, a.sent))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            w,
            "lifecycle    every {} acks: {} sent, {} acked ({actions}; {:.1}/s in window), refused {refused} ({} throttled), {} unanswered; answer {}",
            l.every,
            l.sent,
            l.acked,
            l.acked_per_sec,
            l.throttled,
            l.failed + l.unanswered,
            brief(&l.latency_ms)
        );
        let delivered = if l.delivered.is_empty() {
            "none".to_owned()
        } else {
            counts(&l.delivered)
        };
        let _ = writeln!(
            w,
            "             received {delivered}; checked {} against their answers ({} by another worker), mismatched {}  malformed {}  unrecognised {}",
            l.verified + l.mismatched,
            l.unverified,
            l.mismatched,
            l.malformed,
            l.unrecognised
        );
    }
    if let Some(t) = &r.typing {
        let _ = writeln!(
            w,
            "typing       {} sent, {} acked, {} refused; {} received (no offset, never a message)",
            t.sent, t.acked, t.refused, t.received
        );
    }
    let errors = if r.errors.is_empty() {
        "none".to_owned()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(w, "errors       {errors}");
    if let Some(rec) = &r.recovery {
        let full = rec.time_to_full_recovery_ms.map_or(
            "never (some subscribers did not recover)".to_owned(),
            |ms| format!("{ms:.0} ms"),
        );
        let _ = writeln!(
            w,
            "recovery     {} dropped, {} unrecovered; full recovery {full}; per subscriber {}; target offset {}",
            rec.dropped,
            rec.unrecovered,
            brief(&rec.per_subscriber_ms),
            rec.target_offset.map_or("unknown".to_owned(), |o| o.to_string())
        );
    }
    server_line(w, r);
    for note in &r.notes {
        let _ = writeln!(w, "note         {note}");
    }
    if r.is_correctness_failure() {
        let _ = writeln!(
            w,
            "\n!!! CORRECTNESS FAILURE: lost={} duplicates={} out_of_order={} seq_regressions={} !!!",
            r.lost, r.duplicates, r.out_of_order, r.seq_regressions
        );
        if let Some(l) = r.lifecycle.as_ref().filter(|l| l.is_faulty()) {
            let _ = writeln!(
                w,
                "!!! CORRECTNESS FAILURE (lifecycle messages): mismatched={} malformed={} unrecognised={} !!!",
                l.mismatched, l.malformed, l.unrecognised
            );
        }
        if let Some(chat) = r.chat.as_ref().filter(|c| c.is_faulty()) {
            let _ = writeln!(
                w,
                "!!! CORRECTNESS FAILURE (chat probe): lost={} duplicates={} out_of_order={} seq_regressions={} !!!",
                chat.lost, chat.duplicates, chat.out_of_order, chat.seq_regressions
            );
        }
    }
    if r.local_limit {
        let _ = writeln!(
            w,
            "\n!!! LOCAL LIMIT: {} connection attempts were refused by THIS machine ({}), not by the server. \
             Use more --workers (fd limit) or --source-ips (ports). !!!",
            c.local_limit,
            r.local_limit_detail.as_deref().unwrap_or("fd/port/address exhaustion")
        );
    }
    for failure in &r.failures {
        let _ = writeln!(w, "!!! FAILED: {failure} !!!");
    }
    let verdict = match r.verdict {
        Verdict::Ok => "OK",
        Verdict::Failed => "FAILED",
        Verdict::CorrectnessFailure => "CORRECTNESS FAILURE",
    };
    let _ = writeln!(w, "RESULT: {verdict}");
    out
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn encoding(r: &Report) -> &'static str {
    match r.encoding {
        crate::options::WireEncoding::Json => "json",
        crate::options::WireEncoding::Msgpack => "msgpack",
    }
}

fn brief(p: &Percentiles) -> String {
    if p.count == 0 {
        return "n/a".to_owned();
    }
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p.p50, p.p99, p.max
    )
}

fn server_line(w: &mut String, r: &Report) {
    let s = &r.server;
    let mut parts = Vec::new();
    if let (Some(before), Some(after)) = (s.rss_bytes_before, s.rss_bytes_after) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let per = s.rss_per_connection_bytes.map_or(String::new(), |b| {
            format!(", {:.1} KiB/connection", b / 1024.0)
        });
        parts.push(format!(
            "rss {:.1} → {:.1} MiB{per} (from {})",
            mib(before),
            mib(after),
            s.rss_source.as_deref().unwrap_or("?")
        ));
    }
    if let (Some(user), Some(sys)) = (s.cpu_user_secs, s.cpu_sys_secs) {
        let per = match (s.cpu_user_us_per_delivery, s.cpu_sys_us_per_delivery) {
            (Some(u), Some(k)) => format!(" = {u:.2} µs user + {k:.2} µs sys per delivery"),
            _ => String::new(),
        };
        parts.push(format!(
            "cpu {user:.2} s user, {sys:.2} s sys in window{per}"
        ));
    }
    if !parts.is_empty() {
        let _ = writeln!(w, "server       {}", parts.join("; "));
    }
    if let (Some(cpu), Some(share)) = (r.client.cpu_secs, r.client.cpu_share) {
        let _ = writeln!(
            w,
            "client       cpu {cpu:.2} s in window ({:.0}% of the cores it may run on)",
            share * 100.0
        );
    }
}

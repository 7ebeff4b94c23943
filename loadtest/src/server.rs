//! What the load tester reads about the server itself, when it can: resident memory (the
//! Prometheus gauge `process_resident_memory_bytes` on `GET /metrics`, else `VmRSS` from
//! `/proc/<pid>/status`) and CPU time (`utime`/`stime` from `/proc/<pid>/stat`).

use std::time::Duration;

use tokio::time::Instant;

use tokio_tungstenite::tungstenite::http::Uri;

/// A scrape slower than this would distort the phase it is measuring; give up instead.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// `ws://host:port/ws` → `http://host:port`.
pub fn http_base(ws_url: &str) -> anyhow::Result<String> {
    let uri: Uri = ws_url.parse()?;
    let scheme = match uri.scheme_str() {
        Some("ws") => "http",
        Some("wss") => "https",
        other => anyhow::bail!("{ws_url}: expected a ws:// URL, got scheme {other:?}"),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("{ws_url}: no host"))?;
    Ok(format!("{scheme}://{authority}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rss {
    pub bytes: u64,
    /// `metrics` or `proc`.
    pub source: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuTimes {
    pub user_secs: f64,
    pub sys_secs: f64,
}

pub struct ServerWatch {
    base: String,
    pid: Option<u32>,
    http: reqwest::Client,
}

impl ServerWatch {
    pub fn new(ws_url: &str, pid: Option<u32>) -> anyhow::Result<ServerWatch> {
        Ok(ServerWatch {
            base: http_base(ws_url)?,
            pid,
            http: reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?,
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The server's resident memory now, from `/metrics` if it exports the gauge, else `/proc`.
    pub async fn rss(&self) -> Option<Rss> {
        let from_metrics = async {
            let response = self
                .http
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .ok()?;
            let text = response.error_for_status().ok()?.text().await.ok()?;
            metric_value(&text, "process_resident_memory_bytes")
        };
        if let Some(bytes) = from_metrics.await {
            return Some(Rss {
                bytes: bytes as u64,
                source: "metrics",
            });
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status_rss(&status).map(|bytes| Rss {
            bytes,
            source: "proc",
        })
    }
}

/// A process's CPU time so far, from `/proc/<pid>/stat`.
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (utime, stime) = stat_times(&stat)?;
    let tck = clock_ticks();
    Some(CpuTimes {
        user_secs: utime as f64 / tck,
        sys_secs: stime as f64 / tck,
    })
}

/// A process's CPU time over a window starting at `window_start` (`None` without a pid).
pub async fn sample_cpu(
    pid: Option<u32>,
    window_start: Instant,
    duration: Duration,
) -> Option<(CpuTimes, CpuTimes)> {
    let pid = pid?;
    tokio::time::sleep_until(window_start).await;
    let start = cpu_times(pid)?;
    tokio::time::sleep_until(window_start + duration).await;
    Some((start, cpu_times(pid)?))
}

/// The value of an unlabelled (or first labelled) sample of `name` in Prometheus text format.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, rest) = line.split_once(char::is_whitespace)?;
            let metric = series.split('{').next()?;
            (metric == name).then(|| rest.split_whitespace().next()?.parse().ok())?
        })
}

/// `VmRSS:   123456 kB` → bytes.
fn status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `utime` and `stime` (fields 14 and 15, clock ticks) of `/proc/<pid>/stat`. Fields are counted
/// after the command name's closing parenthesis, since the name itself may contain spaces.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // after_name starts at field 3 (state); utime is field 14.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked (the Linux value on
/// every common architecture).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_base_comes_from_the_ws_url() {
        assert_eq!(
            http_base("ws://127.0.0.1:8080/ws").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(http_base("ws://localhost/ws").unwrap(), "http://localhost");
        assert!(http_base("http://x/ws").is_err());
    }

    #[test]
    fn reads_the_rss_gauge() {
        let text = "# HELP process_resident_memory_bytes Resident memory.\n\
                    # TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes_other 1\n\
                    process_resident_memory_bytes 1.2345e7\n";
        assert_eq!(
            metric_value(text, "process_resident_memory_bytes"),
            Some(12_345_000.0)
        );
        assert_eq!(metric_value("x{a=\"b\"} 3\n", "x"), Some(3.0));
        assert_eq!(metric_value("y 3\n", "x"), None);
    }

    #[test]
    fn reads_proc_files() {
        let stat = "1234 (switch board) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0";
        assert_eq!(stat_times(stat), Some((250, 75)));
        assert_eq!(
            status_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        // Our own process is readable.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_times(&own).is_some());
    }
}

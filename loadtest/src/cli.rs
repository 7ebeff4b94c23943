//! Command-line interface: one subcommand per scenario, sharing the common options, turned into
//! [`RunOptions`]. Defaults give a short (~10 s) meaningful run with only `--url` and `--secret`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::options::{
    ChatParams, ConnectParams, FanoutParams, FeedParams, Ramp, ReconnectParams, RunOptions,
    Scenario, WireEncoding,
};

/// Load generator for Switchboard that checks correctness (loss, duplicates, order) as well as
/// speed. Exit code 0: ok; 1: the run failed; 2: messages were lost, duplicated or reordered.
#[derive(Debug, Parser)]
// A flag given twice takes the last value: wrappers such as scripts/chaos put defaults first.
#[command(name = "switchboard-loadtest", version, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ramp to N authenticated, subscribed connections and hold them: connect rate, failures,
    /// server memory per connection.
    Connect {
        #[command(flatten)]
        common: Common,
        /// Connections to open.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Connections opened per second.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Subscribe each connection to one (shared) channel.
        #[arg(long, default_value_t = true, action = ArgAction::Set)]
        subscribe: bool,
    },
    /// N subscribers on one channel, R msg/s published in total.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Messages per second, over all publishers.
        #[arg(long, default_value_t = 40.0)]
        rate: f64,
        /// Publishing connections (default: one per 100 msg/s).
        #[arg(long)]
        publishers: Option<usize>,
    },
    /// Rooms × members, every member subscribed to and publishing in its room.
    Chat {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        members: usize,
        /// Messages per second per member.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// After every Nth acknowledged publish, the member edits, reacts to, unreacts and
        /// deletes that message over HTTP (4 requests, one after the other), each change a
        /// message of its own that every member must receive (0: off).
        #[arg(long, default_value_t = 0)]
        lifecycle_every: u64,
        /// Members also send a typing signal every 2.5 s (never stored, no offset).
        #[arg(long)]
        typing: bool,
    },
    /// N subscribers drop at once mid-run and resume with `since`: time to full recovery.
    Reconnect {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Messages per second, over all publishers.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long)]
        publishers: Option<usize>,
    },
    /// One author posting over HTTP (POST /api/v1/posts) to N followers, each receiving every
    /// post on its feed:<user id> channel: post→201 and post→feed latency, fan-out loss and order.
    /// Setup (not measured) registers the author and has every follower follow it.
    Feed {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        followers: usize,
        /// Posts per second (one in flight at a time).
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Chat messages per second on a side room with one subscriber, reported apart as the
        /// "chat probe": ordinary publish latency while the posts fan out (0: off).
        #[arg(long, default_value_t = 0.0)]
        chat_rate: f64,
    },
    /// An honest fanout measured alone, then beside bounded attackers (registration flood,
    /// login spray from forged proxy addresses, many sockets of one user, slowloris, history
    /// reads of large pages, a mention flood, presence toggling): honest loss and latency in
    /// both phases, the server's peak RSS, whether it stayed up, what each attacker got.
    Abuse {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 500)]
        subscribers: usize,
        /// Honest messages per second.
        #[arg(long, default_value_t = 40.0)]
        rate: f64,
        /// Concurrent registration requests.
        #[arg(long, default_value_t = 16)]
        register: usize,
        /// Concurrent failed logins.
        #[arg(long, default_value_t = 16)]
        login: usize,
        /// WebSockets one user tries to open.
        #[arg(long, default_value_t = 2000)]
        user_sockets: usize,
        /// Slowloris clients.
        #[arg(long, default_value_t = 200)]
        slowloris: usize,
        /// Concurrent readers of large history pages.
        #[arg(long, default_value_t = 8)]
        history_readers: usize,
        /// Large (~60 KB) messages stored for them.
        #[arg(long, default_value_t = 60)]
        big_messages: usize,
        /// Concurrent publishers of 20-mention messages.
        #[arg(long, default_value_t = 2)]
        mention_publishers: usize,
        /// A socket toggling a subscription to the honest channel.
        #[arg(long, default_value_t = true, action = ArgAction::Set)]
        toggle: bool,
    },
    /// Fault injection: N nodes with their own PostgreSQL and Redis, publishers retrying with
    /// idempotency keys and subscribers resuming with `since` on random nodes, while a seeded
    /// nemesis kills, drains, pauses and partitions nodes and restarts Redis and PostgreSQL; then
    /// a Jepsen-style check of every ack, the history and every subscriber's sequence. Exit 0:
    /// correct; 2: a finding; 1: the run itself failed.
    Chaos {
        /// The `switchboard` binary the nodes run.
        #[arg(long, env = "SWITCHBOARD_BIN")]
        server_bin: PathBuf,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Seconds of publishing, faults included.
        #[arg(long, default_value_t = 150)]
        duration: u64,
        #[arg(long, default_value_t = 12)]
        faults: usize,
        /// Draws the fault schedule (kinds, targets, holds, times) and the workload's choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        #[arg(long, default_value_t = 4)]
        subscribers: usize,
        /// Publishes per second per publisher (each waits for its ack before the next).
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Internal: one worker process of a multi-process run (JSON lines on stdin/stdout).
    #[command(hide = true)]
    Worker,
}

#[derive(Debug, Args)]
pub struct Common {
    /// WebSocket URL; repeat to spread connections round-robin over several servers.
    #[arg(long = "url", default_value = "ws://127.0.0.1:8080/ws")]
    pub urls: Vec<String>,
    /// The server's token-signing secret, to mint access tokens (load-test only).
    #[arg(long, env = "SWITCHBOARD_SECRET", hide_env_values = true)]
    pub secret: String,
    #[arg(long, value_enum, default_value = "json")]
    pub encoding: WireEncoding,
    /// Approximate JSON size of each published payload.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Connection opening pace: seconds (`5s`) or connections per second (`2000/s`).
    #[arg(long, default_value = "1000/s")]
    pub ramp: Ramp,
    /// Measured seconds (connect: how long connections are held).
    #[arg(long, default_value = "8", value_parser = secs)]
    pub duration: Duration,
    /// Seconds of publishing before measuring (excluded from latency and rates).
    #[arg(long, default_value = "2", value_parser = secs)]
    pub warmup: Duration,
    /// Seconds to wait after publishing stops for in-flight messages.
    #[arg(long, default_value = "2", value_parser = secs)]
    pub drain: Duration,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Worker processes (0: one per 15,000 connections).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Spread client sockets over 127.0.0.2.. (0: automatic above 25,000 connections).
    #[arg(long, default_value_t = 0)]
    pub source_ips: usize,
    /// The server's pid, to report its CPU time (and RSS when it has no /metrics).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Percentage of failed connections above which the run fails.
    #[arg(long, default_value_t = 1.0)]
    pub max_connect_failure_pct: f64,
    /// Fixed run id (letters and digits) instead of a random one.
    #[arg(long)]
    pub run_id: Option<String>,
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|e| format!("{s}: {e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s}: {e}"))
}

impl Command {
    /// The honest run options, the attackers and `--json` of the `abuse` subcommand.
    pub fn into_abuse(
        self,
        progress: bool,
    ) -> Option<(RunOptions, crate::abuse::Attackers, Option<PathBuf>)> {
        let Command::Abuse {
            common,
            subscribers,
            rate,
            register,
            login,
            user_sockets,
            slowloris,
            history_readers,
            big_messages,
            mention_publishers,
            toggle,
        } = self
        else {
            return None;
        };
        let attackers = crate::abuse::Attackers {
            register,
            login,
            user_sockets,
            slowloris,
            history_readers,
            big_messages,
            mention_publishers,
            toggle,
            head_start: Duration::from_secs(3),
        };
        let fanout = Command::Fanout {
            common,
            subscribers,
            rate,
            publishers: None,
        };
        let (opts, json) = fanout.into_options(progress)?;
        Some((opts, attackers, json))
    }

    /// The run options and `--json` path; `None` for the worker subcommand.
    /// The chaos run's options and its `--json` path, for `Command::Chaos`.
    pub fn into_chaos(self) -> Option<(crate::chaos::ChaosOptions, Option<PathBuf>)> {
        let Command::Chaos {
            server_bin,
            nodes,
            duration,
            faults,
            seed,
            publishers,
            subscribers,
            rate,
            json,
        } = self
        else {
            return None;
        };
        Some((
            crate::chaos::ChaosOptions {
                server_bin,
                nodes,
                duration: Duration::from_secs(duration),
                faults,
                seed,
                publishers,
                subscribers,
                rate,
            },
            json,
        ))
    }

    pub fn into_options(self, progress: bool) -> Option<(RunOptions, Option<PathBuf>)> {
        let (common, scenario) = match self {
            Command::Connect {
                common,
                connections,
                rate,
                subscribe,
            } => (
                common,
                Scenario::Connect(ConnectParams {
                    connections,
                    rate,
                    subscribe,
                }),
            ),
            Command::Fanout {
                common,
                subscribers,
                rate,
                publishers,
            } => (
                common,
                Scenario::Fanout(FanoutParams {
                    subscribers,
                    rate,
                    publishers,
                }),
            ),
            Command::Chat {
                common,
                rooms,
                members,
                rate,
                lifecycle_every,
                typing,
            } => (
                common,
                Scenario::Chat(ChatParams {
                    rooms,
                    members,
                    rate,
                    lifecycle_every,
                    typing,
                }),
            ),
            Command::Reconnect {
                common,
                subscribers,
                rate,
                publishers,
            } => (
                common,
                Scenario::Reconnect(ReconnectParams {
                    subscribers,
                    rate,
                    publishers,
                }),
            ),
            Command::Feed {
                common,
                followers,
                rate,
                chat_rate,
            } => (
                common,
                Scenario::Feed(FeedParams {
                    followers,
                    rate,
                    chat_rate,
                }),
            ),
            Command::Worker | Command::Abuse { .. } | Command::Chaos { .. } => return None,
        };
        let opts = RunOptions {
            urls: common.urls,
            secret: common.secret,
            encoding: common.encoding,
            payload_bytes: common.payload_bytes,
            ramp: common.ramp,
            warmup: common.warmup,
            duration: common.duration,
            drain: common.drain,
            workers: common.workers,
            source_ips: common.source_ips,
            server_pid: common.server_pid,
            max_connect_failure_pct: common.max_connect_failure_pct,
            progress,
            run_id: common.run_id,
            worker_program: None,
            scenario,
        };
        Some((opts, common.json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed_and_defaults_are_short() {
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "lt",
            "fanout",
            "--url",
            "ws://127.0.0.1:9/ws",
            "--secret",
            "s",
        ]);
        let (opts, json) = cli.command.into_options(false).unwrap();
        assert!(json.is_none());
        assert_eq!(opts.warmup + opts.duration, Duration::from_secs(10));
        assert!(matches!(
            opts.scenario,
            Scenario::Fanout(FanoutParams {
                subscribers: 1000,
                ..
            })
        ));
        let cli = Cli::parse_from([
            "lt",
            "connect",
            "--secret",
            "s",
            "--subscribe",
            "false",
            "--ramp",
            "5s",
        ]);
        let (opts, _) = cli.command.into_options(false).unwrap();
        assert_eq!(opts.urls, vec!["ws://127.0.0.1:8080/ws".to_owned()]);
        assert!(matches!(
            opts.scenario,
            Scenario::Connect(ConnectParams {
                subscribe: false,
                ..
            })
        ));
        let cli = Cli::parse_from([
            "lt",
            "feed",
            "--secret",
            "s",
            "--followers",
            "2000",
            "--rate",
            "10",
            "--chat-rate",
            "5",
        ]);
        let (opts, _) = cli.command.into_options(false).unwrap();
        match opts.scenario {
            Scenario::Feed(p) => assert_eq!((p.followers, p.rate, p.chat_rate), (2000, 10.0, 5.0)),
            other => panic!("not a feed: {other:?}"),
        }
    }

    #[test]
    fn chat_mixes_in_lifecycle_actions_and_typing_only_when_asked() {
        let chat = |extra: &[&str]| {
            let args = ["lt", "chat", "--secret", "s", "--rooms", "3"];
            let cli = Cli::parse_from(args.iter().chain(extra));
            match cli.command.into_options(false).unwrap().0.scenario {
                Scenario::Chat(p) => p,
                other => panic!("not a chat: {other:?}"),
            }
        };
        let plain = chat(&[]);
        assert_eq!(
            (plain.rooms, plain.lifecycle_every, plain.typing),
            (3, 0, false)
        );
        assert!(plain.mix().is_off());
        let mixed = chat(&["--lifecycle-every", "4", "--typing"]);
        assert_eq!((mixed.lifecycle_every, mixed.typing), (4, true));
        // Worker processes get the parameters as JSON; older JSON without them means off.
        let old: ChatParams =
            serde_json::from_str(r#"{"rooms":1,"members":2,"rate":1.0}"#).unwrap();
        assert!(old.mix().is_off());
    }
}

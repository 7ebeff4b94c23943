//! The storage layer on its own, against SQLite and PostgreSQL: offsets gapless per channel under
//! concurrent writers (two `Store` handles stand in for two nodes), and range reads.

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_server::store::messages::{Appended, NewMessage};
use switchboard_server::store::Store;
use switchboard_tests::{Backend, TestDb};

fn msg(channel: &str, n: usize) -> NewMessage {
    NewMessage {
        channel: channel.into(),
        id: uuid::Uuid::new_v4().to_string(),
        from: "tester".into(),
        ts_ms: 1_700_000_000_000,
        data: RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap(),
        published_at: None,
        notification: None,
        idempotency_key: None,
        effect: None,
    }
}

/// The offsets of a batch that had no idempotency keys: all stored.
fn all_stored(outcomes: Vec<Appended>) -> Vec<u64> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Appended::Stored(offset) => offset,
            other => panic!("a batch without keys stored everything, got {other:?}"),
        })
        .collect()
}

async fn open(db: &TestDb) -> Store {
    Store::open(db.url().as_deref(), &db.data_dir(), 8)
        .await
        .unwrap()
}

on_both_backends!(concurrent_batches_get_gapless_offsets_per_channel);

async fn concurrent_batches_get_gapless_offsets_per_channel(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (node_a, node_b) = (open(&db).await, open(&db).await);
    let channels = ["room:a", "room:b", "room:c"];
    let mut tasks = Vec::new();
    for (w, store) in [
        node_a.clone(),
        node_b.clone(),
        node_a.clone(),
        node_b.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            for round in 0..25 {
                // Mixed batches: several channels, several messages each, in shuffled order.
                let mut batch: Vec<NewMessage> = (0..9)
                    .map(|i| msg(channels[(i + round + w) % 3], w * 1000 + round * 10 + i))
                    .collect();
                let offsets = all_stored(store.append(&mut batch).await.unwrap());
                stored.extend(batch.iter().map(|m| m.channel.clone()).zip(offsets));
            }
            stored
        }));
    }
    let mut per_channel: std::collections::HashMap<Arc<str>, Vec<u64>> = Default::default();
    for t in tasks {
        for (channel, offset) in t.await.unwrap() {
            per_channel.entry(channel).or_default().push(offset);
        }
    }
    for channel in channels {
        let mut offsets = per_channel.remove(channel).unwrap();
        offsets.sort_unstable();
        let n = offsets.len() as u64;
        assert_eq!(
            offsets,
            (1..=n).collect::<Vec<_>>(),
            "{channel}: gapless, no reuse"
        );
        assert_eq!(node_b.last_offset(channel).await.unwrap(), n);
        // Reading back in pages yields the same sequence.
        let name: Arc<str> = channel.into();
        // Pages bounded by count, and by bytes (1 byte: one message per page, still all of
        // them, and `more` until the end).
        for max_bytes in [usize::MAX, 1] {
            let (mut after, mut seen) = (0, Vec::new());
            loop {
                let page = node_a
                    .messages_after(&name, after, 17, max_bytes)
                    .await
                    .unwrap();
                let Some(last) = page.messages.last() else {
                    assert!(!page.more);
                    break;
                };
                if max_bytes == 1 {
                    assert_eq!(page.messages.len(), 1);
                    assert_eq!(page.more, last.offset < n);
                }
                after = last.offset;
                seen.extend(page.messages.iter().map(|m| m.offset));
            }
            assert_eq!(seen, (1..=n).collect::<Vec<_>>());
        }
        let newest = node_a
            .messages_before(&name, None, 5, usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            newest.messages.iter().map(|m| m.offset).collect::<Vec<_>>(),
            (n - 4..=n).collect::<Vec<_>>()
        );
        let cut = node_a.messages_before(&name, None, 5, 1).await.unwrap();
        assert_eq!(
            (cut.messages.len(), cut.messages[0].offset, cut.more),
            (1, n, true),
            "a page over its byte budget keeps its newest message"
        );
    }
    assert_eq!(node_a.last_offset("room:never").await.unwrap(), 0);
    node_a.close().await;
    node_b.close().await;
}

on_both_backends!(a_failed_batch_consumes_no_offsets);

/// A batch whose insert fails rolls back its counter bump too: the next batch continues the
/// sequence with no hole.
async fn a_failed_batch_consumes_no_offsets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    assert_eq!(
        store
            .append(&mut [msg("room:x", 1), msg("room:x", 2)])
            .await
            .unwrap(),
        vec![Appended::Stored(1), Appended::Stored(2)]
    );

    // Make the database refuse messages from sender "boom" (a trigger: works on both backends).
    sqlx::any::install_default_drivers();
    let url = db.url().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            db.data_dir().join("switchboard.db").display()
        )
    });
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    let ddl: &[&str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.sender = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN \
             IF NEW.sender = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
        ],
    };
    for stmt in ddl {
        sqlx::query(stmt).execute(&raw).await.unwrap();
    }
    let mut bad = msg("room:x", 3);
    bad.from = "boom".into();
    assert!(store
        .append(&mut [msg("room:x", 3), bad, msg("room:y", 1)])
        .await
        .is_err());
    assert_eq!(store.last_offset("room:x").await.unwrap(), 2);
    assert_eq!(store.last_offset("room:y").await.unwrap(), 0);

    assert_eq!(
        store
            .append(&mut [msg("room:y", 1), msg("room:x", 4)])
            .await
            .unwrap(),
        vec![Appended::Stored(1), Appended::Stored(3)]
    );
    let name: Arc<str> = "room:x".into();
    let all = store
        .messages_after(&name, 0, 100, usize::MAX)
        .await
        .unwrap()
        .messages;
    assert_eq!(
        all.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    raw.close().await;
    store.close().await;
}

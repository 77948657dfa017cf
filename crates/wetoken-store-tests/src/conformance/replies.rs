//! Pushed messages and their reply webhook's delivery (SPEC §14).

use super::*;
use wetoken_core::store::{Appended, MessageAppend, ReplyClaim};

/// One message appended alone.
async fn append(s: &dyn Store, event: &NewEvent, claim: Option<ReplyClaim>) -> Appended {
    let m = MessageAppend {
        event: event.clone(),
        claim,
    };
    let mut done = s.append_messages(&[m]).await.unwrap();
    assert_eq!(done.len(), 1);
    done.remove(0)
}

/// A pushed message is one event however often it comes; the reply
/// webhook's delivery of it is taken with it, by one instance, and a
/// later fan-out of the same event leaves that delivery as it is.
pub async fn messages_and_their_replies(s: &dyn Store) {
    let hook = Webhook {
        name: "conf-reply".into(),
        url: "https://hooks.example.com/reply".into(),
        events: vec![TypePattern::parse("message.*").unwrap()],
        accounts: vec![Pattern::parse("mp:conf_rp").unwrap()],
        format: Format::WechatPlain,
        secret: sealed("v2:k:secret"),
        created_at: 7,
        cursor: 0,
        reply: true,
    };
    s.insert_webhook(&hook).await.unwrap();
    let cursor = s.webhook("conf-reply").await.unwrap().unwrap().cursor;
    let mut msg = event("message.text", "mp:conf_rp", 1);
    msg.dedupe = Some("r".repeat(64));
    let claim = |owner: &str| {
        Some(ReplyClaim {
            webhook: "conf-reply".into(),
            owner: owner.into(),
            lease_ms: LEASE,
            now: 100,
        })
    };

    // Without a reply webhook: the event alone.
    let mut other = event("message.text", "mp:conf_rp", 2);
    other.dedupe = Some("o".repeat(64));
    let plain = append(s, &other, None).await;
    assert!(plain.new && !plain.claimed && plain.delivery.is_none());

    // The first push: a new event, its reply delivery leased to i1.
    let first = append(s, &msg, claim("i1")).await;
    assert!(first.new && first.claimed, "{first:?}");
    let d = first.delivery.clone().expect("the delivery is read back");
    assert_eq!(
        (d.event_id, d.status, d.attempts),
        (first.event_id, DeliveryStatus::Pending, 0)
    );
    assert!(
        s.due_deliveries("conf-reply", 1_000, 10).await.unwrap().is_empty(),
        "leased: no other instance posts it"
    );

    // WeChat's retry, at another instance: the same event, not taken.
    let retry = append(s, &msg, claim("i2")).await;
    assert_eq!(
        (retry.event_id, retry.new, retry.claimed),
        (first.event_id, false, false)
    );
    assert_eq!(events_of(s, "mp:conf_rp").await.len(), 2, "one event per message");

    // The deliverer's fan-out of the same event changes nothing.
    let last = s.last_event_id().await.unwrap();
    assert!(
        s.fan_out("conf-reply", cursor, last, &[first.event_id], 100)
            .await
            .unwrap()
    );
    assert!(
        !s.try_lease_delivery("conf-reply", first.event_id, "i3", LEASE)
            .await
            .unwrap()
    );

    // The reply recorded by its holder; a retry then reads it.
    let write = AttemptWrite {
        webhook: "conf-reply",
        event_id: first.event_id,
        owner: "i1",
        status: DeliveryStatus::Delivered,
        attempts: 1,
        next_at: 150,
        updated_at: 150,
        last_status: Some(200),
        last_error: None,
        reply: Some("<xml><MsgType>text</MsgType><Content>回复</Content></xml>"),
        reply_ms: Some(12),
    };
    assert!(s.record_attempt(&write).await.unwrap());
    let again = append(s, &msg, claim("i2")).await;
    let d = again.delivery.expect("the delivery");
    assert!(!again.claimed);
    assert_eq!(
        (d.status, d.reply.as_deref(), d.reply_ms),
        (DeliveryStatus::Delivered, write.reply, Some(12))
    );
    let listed = s.deliveries("conf-reply", None, 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reply.as_deref(), write.reply);

    // A pending delivery whose lease is free is taken by the next push.
    let mut third = event("message.text", "mp:conf_rp", 3);
    third.dedupe = Some("t".repeat(64));
    let ev = append(s, &third, None).await.event_id;
    let last = s.last_event_id().await.unwrap();
    let cursor = s.webhook("conf-reply").await.unwrap().unwrap().cursor;
    assert!(s.fan_out("conf-reply", cursor, last, &[ev], 100).await.unwrap());
    let taken = append(s, &third, claim("i2")).await;
    assert!(!taken.new && taken.claimed);
    assert!(s.delete_webhook("conf-reply").await.unwrap());

    // The last push: the newest message or event, nothing else.
    s.append_events(&[event("credential.refreshed", "mp:conf_rp", 9)])
        .await
        .unwrap();
    let last = s.last_message(&id("mp:conf_rp")).await.unwrap().expect("a last push");
    assert_eq!((last.id, last.data["n"].as_i64()), (ev, Some(3)));
    assert_eq!(s.last_message(&id("mp:conf_none")).await.unwrap(), None);

    // A batch: one transaction, each message answered in order, a retry
    // inside the batch the same event as its first push.
    let batch: Vec<MessageAppend> = (10..13)
        .map(|n| {
            let mut e = event("message.text", "mp:conf_rp", n);
            e.dedupe = Some(format!("{n:0>64}"));
            MessageAppend { event: e, claim: None }
        })
        .collect();
    let mut with_retry = batch.clone();
    with_retry.push(batch[1].clone());
    let done = s.append_messages(&with_retry).await.unwrap();
    assert_eq!(
        done.iter().map(|d| d.new).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    assert_eq!(
        done[3].event_id, done[1].event_id,
        "the retry is the event its push made"
    );
    assert!(done[0].event_id < done[1].event_id && done[1].event_id < done[2].event_id);
    assert!(s.append_messages(&[]).await.unwrap().is_empty());
}

use chrono::NaiveDateTime;
use proptest::prelude::*;

use super::*;

fn t(s: &str) -> NaiveDateTime {
    s.parse().unwrap()
}

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

fn product(json: &str) -> Product {
    let p: Product = serde_json::from_str(json).unwrap();
    p.validate().unwrap();
    p
}

/// ¥150, 30 days, 30 swaps (¥5.00 each, ¥5.00 a day), cap 4 a day, all policies.
fn swap30() -> Product {
    product(
        r#"{"id":"swap-30","name":"30 swaps / 30 days","price":"150.00","validity":{"days":30},
        "swaps":{"limited":30},"daily_swap_cap":4,"deposit":"300.00",
        "renewal":{"earliest_days_before_expiry":7},
        "freeze":{"fee_per_day":"1.00","max_days":15,"max_times":2},
        "overdue":{"grace_hours":24,"fee_per_day":"5.00","fee_cap":"50.00"},
        "refund":{"window_days":7}}"#,
    )
}

/// ¥199 a month, unlimited swaps with a rented battery, stacking renewals.
fn combo_month() -> Product {
    product(
        r#"{"id":"combo-m","price":"199.00","validity":{"months":1},"swaps":"unlimited",
        "rental":true,"daily_swap_cap":6,
        "renewal":{"mode":"stack","max_queued_terms":1},
        "overdue":{"grace_hours":0,"fee_per_day":"10.00"},
        "refund":{"window_days":30}}"#,
    )
}

fn rental7() -> Product {
    product(
        r#"{"id":"rent-7","price":"21.00","validity":{"days":7},"rental":true,
        "refund":{"window_days":7},"overdue":{"grace_hours":12,"fee_per_day":"3.00"}}"#,
    )
}

fn buy(p: Product, at: &str) -> Package {
    Package::purchase(&Purchase::new("pkg", "rider", p), t(at))
        .unwrap()
        .0
}

fn consume(id: &str) -> Command {
    Command::Consume {
        order_id: id.into(),
        swaps: 1,
    }
}

fn renew(id: &str) -> Command {
    Command::Renew {
        renewal_id: id.into(),
        paid: None,
        rider: RiderProfile::default(),
    }
}

// ---------------------------------------------------------------- purchase

#[test]
fn purchase_immediate_is_pending_then_active() {
    let (p, ev) =
        Package::purchase(&Purchase::new("k", "r", swap30()), t("2026-05-01T08:00:00")).unwrap();
    assert_eq!(ev.len(), 2);
    assert!(
        matches!(&ev[0], Event::Purchased { paid, deposit: Some(d), .. }
        if *paid == m("150") && *d == m("300"))
    );
    assert!(
        matches!(&ev[1], Event::Activated { automatic: false, end, .. }
        if *end == t("2026-05-31T08:00:00"))
    );
    assert_eq!(p.status, Status::Active);
    assert_eq!(p.ends_at(), Some(t("2026-05-31T08:00:00")));
    assert_eq!(
        p.next_deadline(),
        Some(Deadline {
            at: t("2026-05-31T08:00:00"),
            kind: DeadlineKind::Expiry
        })
    );
    assert_eq!(Package::replay(&ev).unwrap(), p);
}

#[test]
fn first_use_activation_explicit_automatic_and_by_swap() {
    let mut prod = swap30();
    prod.activation = Activation::FirstUse {
        auto_after_days: Some(3),
    };
    let p = buy(prod.clone(), "2026-05-01T08:00:00");
    assert_eq!(p.status, Status::Pending);
    assert_eq!(
        p.next_deadline().unwrap(),
        Deadline {
            at: t("2026-05-04T08:00:00"),
            kind: DeadlineKind::Activation
        }
    );
    // explicit
    let mut a = p.clone();
    let ev = a
        .handle(&Command::Activate, t("2026-05-02T08:00:00"))
        .unwrap();
    assert!(matches!(
        ev[..],
        [Event::Activated {
            automatic: false,
            ..
        }]
    ));
    assert_eq!(a.ends_at(), Some(t("2026-06-01T08:00:00")));
    assert!(matches!(
        a.handle(&Command::Activate, t("2026-05-02T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Active,
            ..
        })
    ));
    // automatic at the deadline, emitted at the deadline's time
    let mut b = p.clone();
    let ev = b.handle(&Command::Tick, t("2026-05-10T00:00:00")).unwrap();
    assert!(
        matches!(&ev[..], [Event::Activated { automatic: true, at, .. }] if *at == t("2026-05-04T08:00:00"))
    );
    // by the first swap
    let mut c = p;
    let ev = c.handle(&consume("o1"), t("2026-05-02T09:00:00")).unwrap();
    assert!(matches!(
        ev[..],
        [Event::Activated { .. }, Event::Consumed { .. }]
    ));
    assert_eq!(c.status, Status::Active);
}

#[test]
fn purchase_errors() {
    let now = t("2026-05-01T08:00:00");
    let mut bad = swap30();
    bad.swaps = Swaps::None;
    assert!(matches!(
        Package::purchase(&Purchase::new("k", "r", bad), now),
        Err(PackageError::InvalidProduct { .. })
    ));
    let mut newbies = swap30();
    newbies.eligibility.audience = Audience::NewRiders;
    let mut pu = Purchase::new("k", "r", newbies);
    pu.rider.packages_bought = 1;
    assert!(matches!(
        Package::purchase(&pu, now),
        Err(PackageError::NotEligible {
            reason: Ineligibility::NewRidersOnly,
            ..
        })
    ));
    let mut pu = Purchase::new("k", "r", swap30());
    pu.paid = Some(m("1 USD"));
    assert!(matches!(
        Package::purchase(&pu, now),
        Err(PackageError::CurrencyMismatch { .. })
    ));
    pu.paid = Some(m("-1"));
    assert!(matches!(
        Package::purchase(&pu, now),
        Err(PackageError::InvalidCommand { .. })
    ));
    pu.paid = Some(m("1.001"));
    assert!(Package::purchase(&pu, now).is_err());
    assert!(Package::purchase(&Purchase::new("", "r", swap30()), now).is_err());
    assert!(Package::purchase(&Purchase::new("k", "", swap30()), now).is_err());
    // a discounted price is kept
    let mut pu = Purchase::new("k", "r", swap30());
    pu.paid = Some(m("120"));
    let (p, _) = Package::purchase(&pu, now).unwrap();
    assert_eq!(p.paid_total, m("120"));
}

// ---------------------------------------------------------------- consumption

#[test]
fn consumption_is_idempotent_by_order_id() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    let ev = p.handle(&consume("o1"), t("2026-05-01T09:00:00")).unwrap();
    assert!(matches!(
        &ev[..],
        [Event::Consumed {
            remaining: Some(29),
            term: 0,
            ..
        }]
    ));
    let before = p.clone();
    assert!(
        p.handle(&consume("o1"), t("2026-05-01T10:00:00"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(p.terms[0].used, 1);
    assert_eq!(p.consumptions, before.consumptions);
    let e = p
        .handle(
            &Command::Consume {
                order_id: "o1".into(),
                swaps: 2,
            },
            t("2026-05-01T10:00:00"),
        )
        .unwrap_err();
    assert_eq!(
        e,
        PackageError::OrderConflict {
            order_id: "o1".into(),
            recorded_swaps: 1,
            requested_swaps: 2
        }
    );
    assert_eq!(p.terms[0].used, 1);
}

#[test]
fn consumption_errors() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    let now = t("2026-05-01T09:00:00");
    assert!(matches!(
        p.handle(
            &Command::Consume {
                order_id: "x".into(),
                swaps: 0
            },
            now
        ),
        Err(PackageError::InvalidCommand { .. })
    ));
    assert!(matches!(
        p.handle(&consume(""), now),
        Err(PackageError::InvalidCommand { .. })
    ));
    let mut r = buy(rental7(), "2026-05-01T08:00:00");
    assert!(matches!(
        r.handle(&consume("o"), now),
        Err(PackageError::NoSwapEntitlement { .. })
    ));
    // daily cap 4
    for i in 0..4 {
        p.handle(&consume(&format!("d{i}")), now).unwrap();
    }
    assert_eq!(
        p.handle(&consume("d5"), t("2026-05-01T23:59:59"))
            .unwrap_err(),
        PackageError::DailyCapReached {
            date: "2026-05-01".parse().unwrap(),
            cap: 4,
            used: 4,
            requested: 1
        }
    );
    // next local day is fine
    p.handle(&consume("d5"), t("2026-05-02T00:00:00")).unwrap();
    // quota
    let mut small = swap30();
    small.swaps = Swaps::Limited(2);
    let mut q = buy(small, "2026-05-01T08:00:00");
    q.handle(
        &Command::Consume {
            order_id: "a".into(),
            swaps: 2,
        },
        now,
    )
    .unwrap();
    assert_eq!(
        q.handle(&consume("b"), now).unwrap_err(),
        PackageError::QuotaExhausted {
            remaining: 0,
            requested: 1
        }
    );
}

#[test]
fn consumption_after_expiry_reports_expiry() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    let before = p.clone();
    let e = p
        .handle(&consume("o"), t("2026-06-01T00:00:00"))
        .unwrap_err();
    assert!(matches!(
        e,
        PackageError::WrongStatus {
            status: Status::Expired,
            ..
        }
    ));
    assert_eq!(p, before, "a failed command changes nothing");
    // a Tick records the expiry
    let ev = p.handle(&Command::Tick, t("2026-06-01T00:00:00")).unwrap();
    assert_eq!(
        ev,
        vec![Event::Expired {
            at: t("2026-05-31T08:00:00")
        }]
    );
}

#[test]
fn unlimited_swaps_respect_the_daily_cap() {
    let mut p = buy(combo_month(), "2026-05-01T08:00:00");
    for i in 0..6 {
        let ev = p
            .handle(&consume(&format!("o{i}")), t("2026-05-01T09:00:00"))
            .unwrap();
        assert!(matches!(
            &ev[..],
            [Event::Consumed {
                remaining: None,
                ..
            }]
        ));
    }
    assert!(matches!(
        p.handle(&consume("o7"), t("2026-05-01T20:00:00")),
        Err(PackageError::DailyCapReached { cap: 6, .. })
    ));
    let e = p.entitlement(t("2026-05-01T21:00:00")).unwrap();
    assert_eq!(
        (e.unlimited, e.swaps_today, e.daily_cap_left),
        (true, 6, Some(0))
    );
}

#[test]
fn reversal_returns_the_swap_once() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    let now = t("2026-05-01T09:00:00");
    p.handle(&consume("o1"), now).unwrap();
    let ev = p
        .handle(
            &Command::ReverseConsumption {
                order_id: "o1".into(),
            },
            now,
        )
        .unwrap();
    assert!(matches!(
        &ev[..],
        [Event::ConsumptionReversed { swaps: 1, .. }]
    ));
    assert_eq!(p.terms[0].used, 0);
    assert!(
        p.handle(
            &Command::ReverseConsumption {
                order_id: "o1".into()
            },
            now
        )
        .unwrap()
        .is_empty()
    );
    // the order id stays taken: a replay of the swap is still a no-op
    assert!(p.handle(&consume("o1"), now).unwrap().is_empty());
    assert_eq!(p.swaps_on(now), 0);
    assert!(matches!(
        p.handle(
            &Command::ReverseConsumption {
                order_id: "zz".into()
            },
            now
        ),
        Err(PackageError::UnknownOrder { .. })
    ));
}

// ---------------------------------------------------------------- renewal

#[test]
fn extend_renewal_merges_into_the_running_term() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    for i in 0..3 {
        p.handle(&consume(&format!("o{i}")), t("2026-05-02T08:00:00"))
            .unwrap();
    }
    // renewal opens 7 days before the end (05-31 08:00): 05-24 08:00
    assert_eq!(
        p.handle(&renew("r1"), t("2026-05-24T07:59:59"))
            .unwrap_err(),
        PackageError::RenewalTooEarly {
            opens_at: t("2026-05-24T08:00:00"),
            ends_at: t("2026-05-31T08:00:00"),
            days: 7
        }
    );
    let ev = p.handle(&renew("r1"), t("2026-05-24T08:00:00")).unwrap();
    assert!(
        matches!(&ev[..], [Event::Renewed { effect: RenewalEffect::Extended, end, swaps: Some(30), .. }]
        if *end == t("2026-06-30T08:00:00"))
    );
    assert_eq!(p.terms.len(), 1);
    assert_eq!(p.terms[0].quota, Some(60));
    assert_eq!(p.terms[0].used, 3);
    assert_eq!(p.terms[0].paid, m("300"));
    assert_eq!(p.paid_total, m("300"));
    assert_eq!(p.last_paid_at, t("2026-05-24T08:00:00"));
    // idempotent and conflict
    assert!(
        p.handle(&renew("r1"), t("2026-05-25T08:00:00"))
            .unwrap()
            .is_empty()
    );
    let e = p
        .handle(
            &Command::Renew {
                renewal_id: "r1".into(),
                paid: Some(m("1")),
                rider: RiderProfile::default(),
            },
            t("2026-05-25T08:00:00"),
        )
        .unwrap_err();
    assert!(matches!(e, PackageError::RenewalConflict { .. }));
}

#[test]
fn stack_renewal_queues_a_term_and_unused_swaps_lapse() {
    let mut prod = swap30();
    prod.renewal = RenewalPolicy {
        mode: RenewalMode::Stack,
        max_queued_terms: Some(1),
        ..RenewalPolicy::default()
    };
    let mut p = buy(prod, "2026-05-01T08:00:00");
    p.handle(&consume("o1"), t("2026-05-02T08:00:00")).unwrap();
    let ev = p.handle(&renew("r1"), t("2026-05-03T08:00:00")).unwrap();
    assert!(
        matches!(&ev[..], [Event::Renewed { effect: RenewalEffect::Stacked, start, end, .. }]
        if *start == t("2026-05-31T08:00:00") && *end == t("2026-06-30T08:00:00"))
    );
    assert_eq!(p.terms.len(), 2);
    assert_eq!(
        p.handle(&renew("r2"), t("2026-05-03T09:00:00"))
            .unwrap_err(),
        PackageError::TooManyQueuedTerms { queued: 1, max: 1 }
    );
    // in the second term the quota is fresh: 29 unused swaps of term 0 lapsed
    let ev = p.handle(&consume("o2"), t("2026-06-01T08:00:00")).unwrap();
    assert!(matches!(
        &ev[..],
        [Event::Consumed {
            term: 1,
            remaining: Some(29),
            ..
        }]
    ));
    assert_eq!(p.status, Status::Active);
    // once term 0 has ended a new stack is allowed again
    p.handle(&renew("r2"), t("2026-06-25T08:00:00")).unwrap();
    assert_eq!(p.ends_at(), Some(t("2026-07-30T08:00:00")));
}

#[test]
fn renewal_after_expiry_restarts_and_settles_overdue() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    // ends 05-31 08:00, grace to 06-01 08:00; at 06-03 09:00: 2 days 1 hour = 3 started days × 5
    let ev = p.handle(&renew("r1"), t("2026-06-03T09:00:00")).unwrap();
    let names: Vec<_> = ev.iter().map(Event::name).collect();
    assert_eq!(
        names,
        ["expired", "overdue_started", "overdue_settled", "renewed"]
    );
    assert!(matches!(&ev[2], Event::OverdueSettled { days: 3, fee, .. } if *fee == m("15")));
    assert!(
        matches!(&ev[3], Event::Renewed { effect: RenewalEffect::Restarted, start, .. }
        if *start == t("2026-06-03T09:00:00"))
    );
    assert_eq!(p.status, Status::Active);
    assert_eq!(p.fees_charged, m("15"));
    assert_eq!(p.terms.len(), 2);
    // within grace: restarted without fee
    let mut q = buy(swap30(), "2026-05-01T08:00:00");
    let ev = q.handle(&renew("r1"), t("2026-05-31T20:00:00")).unwrap();
    assert_eq!(
        ev.iter().map(Event::name).collect::<Vec<_>>(),
        ["expired", "renewed"]
    );
}

#[test]
fn renewal_errors() {
    let mut prod = swap30();
    prod.renewal.allowed = false;
    let mut p = buy(prod, "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&renew("r"), t("2026-05-28T08:00:00")),
        Err(PackageError::NotRenewable { .. })
    ));
    let mut prod = swap30();
    prod.eligibility.audience = Audience::NewRiders;
    let mut p = buy(prod, "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&renew("r"), t("2026-05-28T08:00:00")),
        Err(PackageError::NotEligible {
            reason: Ineligibility::NewRidersOnly,
            ..
        })
    ));
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&renew(""), t("2026-05-28T08:00:00")),
        Err(PackageError::InvalidCommand { .. })
    ));
    let mut prod = swap30();
    prod.activation = Activation::FirstUse {
        auto_after_days: None,
    };
    let mut p = buy(prod, "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&renew("r"), t("2026-05-28T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Pending,
            ..
        })
    ));
}

// ---------------------------------------------------------------- freeze

fn frozen_at_0503() -> Package {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    p.handle(
        &Command::RequestFreeze {
            days: 5,
            reason: "trip".into(),
        },
        t("2026-05-03T08:00:00"),
    )
    .unwrap();
    let ev = p
        .handle(&Command::ApproveFreeze, t("2026-05-03T10:00:00"))
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::Frozen {
            until: t("2026-05-08T10:00:00"),
            at: t("2026-05-03T10:00:00")
        }]
    );
    p
}

#[test]
fn freeze_stops_the_clock_and_unfreezes_itself() {
    let mut p = frozen_at_0503();
    assert_eq!(p.status, Status::Frozen);
    assert_eq!(
        p.next_deadline().unwrap(),
        Deadline {
            at: t("2026-05-08T10:00:00"),
            kind: DeadlineKind::Unfreeze
        }
    );
    assert!(matches!(
        p.handle(&consume("o"), t("2026-05-04T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Frozen,
            ..
        })
    ));
    // fee accrued after 1 day 1 hour: 2 started days × ¥1
    let f = p.fees(t("2026-05-04T11:00:00")).unwrap();
    assert_eq!(f.freeze.unwrap().fee, m("2"));
    // automatic unfreeze at 05-08 10:00: 5 days × ¥1, end moves out 5 days
    let ev = p.handle(&Command::Tick, t("2026-05-09T00:00:00")).unwrap();
    assert_eq!(
        ev,
        vec![Event::Unfrozen {
            automatic: true,
            days: 5,
            fee: m("5"),
            at: t("2026-05-08T10:00:00")
        }]
    );
    assert_eq!(p.ends_at(), Some(t("2026-06-05T08:00:00")));
    assert_eq!(p.fees_charged, m("5"));
    assert_eq!(p.status, Status::Active);
}

#[test]
fn early_unfreeze_charges_started_days() {
    let mut p = frozen_at_0503();
    // 1 day 2 hours frozen → 2 started days; end moves out by exactly 26 hours
    let ev = p
        .handle(&Command::Unfreeze, t("2026-05-04T12:00:00"))
        .unwrap();
    assert!(
        matches!(&ev[..], [Event::Unfrozen { automatic: false, days: 2, fee, .. }] if *fee == m("2"))
    );
    assert_eq!(p.ends_at(), Some(t("2026-06-01T10:00:00")));
    assert!(matches!(
        p.handle(&Command::Unfreeze, t("2026-05-04T12:00:00")),
        Err(PackageError::WrongStatus { .. })
    ));
}

#[test]
fn freeze_rules() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    let now = t("2026-05-02T08:00:00");
    let req = |days| Command::RequestFreeze {
        days,
        reason: String::new(),
    };
    assert_eq!(
        p.handle(&req(16), now).unwrap_err(),
        PackageError::FreezeDays {
            days: 16,
            min: 1,
            max: 15
        }
    );
    assert!(matches!(
        p.handle(&req(0), now),
        Err(PackageError::FreezeDays { .. })
    ));
    assert_eq!(
        p.handle(&Command::ApproveFreeze, now).unwrap_err(),
        PackageError::NoFreezeRequest
    );
    assert_eq!(
        p.handle(
            &Command::RejectFreeze {
                reason: String::new()
            },
            now
        )
        .unwrap_err(),
        PackageError::NoFreezeRequest
    );
    p.handle(&req(2), now).unwrap();
    assert_eq!(
        p.handle(&req(2), now).unwrap_err(),
        PackageError::FreezeRequestPending
    );
    let ev = p
        .handle(
            &Command::RejectFreeze {
                reason: "peak season".into(),
            },
            now,
        )
        .unwrap();
    assert!(matches!(&ev[..], [Event::FreezeRejected { .. }]));
    assert_eq!(p.status, Status::Active);
    // two freezes allowed
    for day in ["2026-05-03", "2026-05-06"] {
        p.handle(&req(1), t(&format!("{day}T08:00:00"))).unwrap();
        p.handle(&Command::ApproveFreeze, t(&format!("{day}T08:00:00")))
            .unwrap();
        p.handle(&Command::Unfreeze, t(&format!("{day}T09:00:00")))
            .unwrap();
    }
    assert_eq!(
        p.handle(&req(1), t("2026-05-10T08:00:00")).unwrap_err(),
        PackageError::FreezeLimitReached { max_times: 2 }
    );
    let mut r = buy(rental7(), "2026-05-01T08:00:00");
    assert!(matches!(
        r.handle(&req(1), now),
        Err(PackageError::NotFreezable { .. })
    ));
}

// ---------------------------------------------------------------- expiry, overdue, close

#[test]
fn overdue_fee_per_started_day_after_grace_with_cap() {
    let p = buy(swap30(), "2026-05-01T08:00:00");
    // ends 05-31 08:00; grace 24 h to 06-01 08:00
    let f = p.fees(t("2026-06-01T07:59:59")).unwrap();
    assert_eq!(f.status, Status::Expired);
    let o = f.overdue.unwrap();
    assert_eq!((o.days, o.fee), (0, m("0")));
    // at the grace end itself the package is overdue, with 0 started days
    let f = p.fees(t("2026-06-01T08:00:00")).unwrap();
    assert_eq!((f.status, f.due), (Status::Overdue, m("0")));
    let f = p.fees(t("2026-06-01T08:00:01")).unwrap();
    assert_eq!(f.status, Status::Overdue);
    assert_eq!(f.overdue.unwrap().fee, m("5"));
    assert_eq!(f.events.len(), 2);
    // 30 days later: 30 × 5 = 150, capped at 50
    let o = p.fees(t("2026-07-01T08:00:00")).unwrap().overdue.unwrap();
    assert_eq!((o.days, o.fee, o.capped), (30, m("50"), true));
    // no overdue policy: no fee
    let mut prod = swap30();
    prod.overdue = None;
    let q = buy(prod, "2026-05-01T08:00:00");
    let f = q.fees(t("2026-07-01T08:00:00")).unwrap();
    assert_eq!(
        (f.status, f.overdue, f.due),
        (Status::Expired, None, m("0"))
    );
}

#[test]
fn close_settles_overdue() {
    let mut p = buy(rental7(), "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&Command::Close, t("2026-05-02T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Active,
            ..
        })
    ));
    // ends 05-08 08:00, grace 12 h to 05-08 20:00; at 05-10 08:00: 1.5 days → 2 × ¥3
    let ev = p.handle(&Command::Close, t("2026-05-10T08:00:00")).unwrap();
    assert_eq!(
        ev.iter().map(Event::name).collect::<Vec<_>>(),
        ["expired", "overdue_started", "overdue_settled", "closed"]
    );
    assert!(matches!(&ev[2], Event::OverdueSettled { days: 2, fee, .. } if *fee == m("6")));
    assert_eq!(p.status, Status::Closed);
    assert_eq!(p.next_deadline(), None);
    assert_eq!(p.liability(t("2026-05-11T08:00:00")).unwrap(), m("0"));
}

#[test]
fn cancel_refunds_a_pending_purchase_in_full() {
    // a first-use rental that never started, not refundable by its policy
    let mut prod = rental7();
    prod.refund = None;
    prod.activation = Activation::FirstUse {
        auto_after_days: None,
    };
    let mut p = buy(prod, "2026-05-01T08:00:00");
    assert_eq!(p.status, Status::Pending);
    let ev = p
        .handle(&Command::Cancel, t("2026-05-03T08:00:00"))
        .unwrap();
    assert!(matches!(&ev[..], [Event::Refunded { amount, .. }] if *amount == m("21")));
    assert_eq!((p.status, p.paid_total), (Status::Refunded, m("0")));
    assert_eq!(p.liability(t("2026-05-03T08:00:00")).unwrap(), m("0"));
    // a started package cannot be cancelled (refund it, or end it)
    let mut q = buy(rental7(), "2026-05-01T08:00:00");
    assert!(matches!(
        q.handle(&Command::Cancel, t("2026-05-01T09:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Active,
            ..
        })
    ));
}

#[test]
fn end_closes_now_and_settles_what_is_due() {
    // active: returned after 2 days 1 hour of 7; the rest lapses
    let mut p = buy(rental7(), "2026-05-01T08:00:00");
    let ev = p.handle(&Command::End, t("2026-05-03T09:00:00")).unwrap();
    assert_eq!(ev.iter().map(Event::name).collect::<Vec<_>>(), ["ended"]);
    assert_eq!(p.status, Status::Closed);
    assert_eq!(p.ended_at, Some(t("2026-05-03T09:00:00")));
    assert_eq!(p.ends_at(), Some(t("2026-05-03T09:00:00")));
    assert_eq!(p.next_deadline(), None);
    assert_eq!(p.liability(t("2026-05-03T09:00:00")).unwrap(), m("0"));
    // frozen: unfrozen first with its fee (1 started day x 1.00), then closed
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    p.handle(
        &Command::RequestFreeze {
            days: 3,
            reason: String::new(),
        },
        t("2026-05-02T08:00:00"),
    )
    .unwrap();
    p.handle(&Command::ApproveFreeze, t("2026-05-02T08:00:00"))
        .unwrap();
    let ev = p.handle(&Command::End, t("2026-05-02T20:00:00")).unwrap();
    assert_eq!(
        ev.iter().map(Event::name).collect::<Vec<_>>(),
        ["unfrozen", "ended"]
    );
    assert!(matches!(&ev[0], Event::Unfrozen { days: 1, fee, .. } if *fee == m("1")));
    // overdue: ends 05-08 08:00, grace 12 h to 05-08 20:00; at 05-10 08:00
    // 1.5 days → 2 started days × 3.00 = 6.00, as close would
    let mut p = buy(rental7(), "2026-05-01T08:00:00");
    let ev = p.handle(&Command::End, t("2026-05-10T08:00:00")).unwrap();
    assert_eq!(
        ev.iter().map(Event::name).collect::<Vec<_>>(),
        ["expired", "overdue_started", "overdue_settled", "closed"]
    );
    assert_eq!(p.fees_charged, m("6"));
    // nothing left to end
    assert!(matches!(
        p.handle(&Command::End, t("2026-05-10T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Closed,
            ..
        })
    ));
    // the events replay to the same state
    let mut q = buy(rental7(), "2026-05-01T08:00:00");
    let (_, first) = Package::purchase(
        &Purchase::new("pkg", "rider", rental7()),
        t("2026-05-01T08:00:00"),
    )
    .unwrap();
    let ev = q.handle(&Command::End, t("2026-05-03T09:00:00")).unwrap();
    assert_eq!(Package::replay(&[first, ev].concat()).unwrap(), q);
}

#[test]
fn time_must_not_go_backwards() {
    let mut p = buy(swap30(), "2026-05-02T08:00:00");
    assert!(matches!(
        p.handle(&consume("o"), t("2026-05-01T08:00:00")),
        Err(PackageError::TimeWentBackwards { .. })
    ));
    assert!(p.refund_quote(t("2026-05-01T08:00:00")).is_err());
}

// ---------------------------------------------------------------- change

#[test]
fn upgrade_and_downgrade_prorate() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    for i in 0..8 {
        p.handle(
            &consume(&format!("o{i}")),
            t(&format!("2026-05-0{}T09:00:00", 2 + i / 4)),
        )
        .unwrap();
    }
    // credit = 150 − 5 × 8 = 110; combo 199 → charge 89
    let now = t("2026-05-10T08:00:00");
    let q = p
        .change_quote(&combo_month(), &RiderProfile::default(), now)
        .unwrap();
    assert_eq!(q.direction, ChangeDirection::Upgrade);
    assert_eq!((q.credit, q.charge, q.refund), (m("110"), m("89"), m("0")));
    assert_eq!(q.end, t("2026-06-10T08:00:00"));
    let mut up = p.clone();
    let ev = up
        .handle(
            &Command::Change {
                to: Box::new(combo_month()),
                rider: RiderProfile::default(),
            },
            now,
        )
        .unwrap();
    assert!(matches!(&ev[..], [Event::Changed { charge, .. }] if *charge == m("89")));
    assert_eq!(up.product.id, "combo-m");
    assert_eq!(up.paid_total, m("239"));
    assert_eq!(up.liability(now).unwrap(), m("199"));
    // downgrade to the rental: credit 110 − 21 = 89 back
    let q = p
        .change_quote(&rental7(), &RiderProfile::default(), now)
        .unwrap();
    assert_eq!(q.direction, ChangeDirection::Downgrade);
    assert_eq!((q.charge, q.refund), (m("0"), m("89")));
    assert!(matches!(
        p.change_quote(&swap30(), &RiderProfile::default(), now),
        Err(PackageError::SameProduct { .. })
    ));
    let mut usd = rental7();
    usd.price = m("1 USD");
    usd.overdue = None;
    assert!(matches!(
        p.change_quote(&usd, &RiderProfile::default(), now),
        Err(PackageError::CurrencyMismatch { .. })
    ));
}

// ---------------------------------------------------------------- refund

#[test]
fn refund_count_limited() {
    let mut p = buy(swap30(), "2026-05-01T08:00:00");
    for i in 0..3 {
        p.handle(&consume(&format!("o{i}")), t("2026-05-02T08:00:00"))
            .unwrap();
    }
    let q = p.refund_quote(t("2026-05-03T08:00:00")).unwrap();
    assert_eq!(q.terms[0].basis, RefundBasis::Count);
    assert_eq!(q.amount, m("135")); // 150 − 5 × 3
    assert_eq!(q.window_ends_at, Some(t("2026-05-08T08:00:00")));
    let ev = p
        .handle(&Command::Refund, t("2026-05-03T08:00:00"))
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::Refunded {
            amount: m("135"),
            at: t("2026-05-03T08:00:00")
        }]
    );
    assert_eq!(p.status, Status::Refunded);
    assert_eq!(p.paid_total, m("15"));
    assert_eq!(p.liability(t("2026-05-03T08:00:00")).unwrap(), m("0"));
    assert!(matches!(
        p.handle(&Command::Refund, t("2026-05-03T08:00:00")),
        Err(PackageError::WrongStatus {
            status: Status::Refunded,
            ..
        })
    ));
}

#[test]
fn refund_time_limited_and_window() {
    let p = buy(rental7(), "2026-05-01T08:00:00");
    // 21 / 7 = ¥3 a day; 2 days 1 second = 3 started days → 21 − 9 = 12
    let q = p.refund_quote(t("2026-05-03T08:00:01")).unwrap();
    assert_eq!(
        (q.terms[0].basis, q.terms[0].days_used),
        (RefundBasis::Time, 3)
    );
    assert_eq!(q.amount, m("12"));
    // the window ends 05-08 08:00 inclusive — which is also the end: nothing left
    let q = p.refund_quote(t("2026-05-08T08:00:00")).unwrap();
    assert_eq!(q.status, Status::Expired);
    assert!(!q.refundable);
    let mut prod = swap30();
    prod.validity = Validity::Days(60);
    let p = buy(prod, "2026-05-01T08:00:00");
    let q = p.refund_quote(t("2026-05-08T08:00:01")).unwrap();
    assert!(!q.refundable);
    assert_eq!(
        q.blocked_by,
        Some(PackageError::RefundWindowClosed {
            window_ended_at: t("2026-05-08T08:00:00")
        })
    );
    assert_eq!((q.unused, q.amount), (m("150"), m("0")));
    let mut prod = swap30();
    prod.refund = None;
    let mut p = buy(prod, "2026-05-01T08:00:00");
    assert!(matches!(
        p.handle(&Command::Refund, t("2026-05-01T09:00:00")),
        Err(PackageError::NotRefundable { .. })
    ));
}

#[test]
fn refund_combo_takes_the_smaller_value_and_never_goes_negative() {
    let mut prod = rental7();
    prod.swaps = Swaps::Limited(7); // ¥3 a swap, ¥3 a day
    let mut p = buy(prod, "2026-05-01T08:00:00");
    for i in 0..5 {
        p.handle(&consume(&format!("o{i}")), t("2026-05-01T09:00:00"))
            .unwrap();
    }
    // count: 21 − 15 = 6; time: 1 started day: 21 − 3 = 18 → 6
    let q = p.refund_quote(t("2026-05-01T10:00:00")).unwrap();
    assert_eq!(
        (q.terms[0].basis, q.amount),
        (RefundBasis::CountAndTime, m("6"))
    );
    // discounted purchase: paid 10 < used 5 × 3 → never below zero
    let mut prod = rental7();
    prod.swaps = Swaps::Limited(7);
    let mut pu = Purchase::new("k", "r", prod);
    pu.paid = Some(m("10"));
    let (mut p, _) = Package::purchase(&pu, t("2026-05-01T08:00:00")).unwrap();
    for i in 0..5 {
        p.handle(&consume(&format!("o{i}")), t("2026-05-01T09:00:00"))
            .unwrap();
    }
    assert_eq!(
        p.refund_quote(t("2026-05-01T10:00:00")).unwrap().amount,
        m("0")
    );
}

#[test]
fn refund_of_pending_is_full_and_of_frozen_settles_the_fee() {
    let mut prod = swap30();
    prod.activation = Activation::FirstUse {
        auto_after_days: None,
    };
    let mut p = buy(prod, "2026-05-01T08:00:00");
    let q = p.refund_quote(t("2026-05-05T08:00:00")).unwrap();
    assert_eq!(
        (q.terms[0].basis, q.amount),
        (RefundBasis::NotStarted, m("150"))
    );
    p.handle(&Command::Refund, t("2026-05-05T08:00:00"))
        .unwrap();
    assert_eq!(p.status, Status::Refunded);

    let mut p = frozen_at_0503();
    // used 05-01 08:00 → 05-03 10:00 (2 days 2 h active) before the freeze; count-limited: 150
    let q = p.refund_quote(t("2026-05-05T10:00:00")).unwrap();
    assert_eq!((q.freeze_fee, q.amount), (m("2"), m("150")));
    let ev = p
        .handle(&Command::Refund, t("2026-05-05T10:00:00"))
        .unwrap();
    assert_eq!(
        ev.iter().map(Event::name).collect::<Vec<_>>(),
        ["unfrozen", "refunded"]
    );
}

#[test]
fn frozen_time_is_not_used_time() {
    let mut prod = rental7();
    prod.freeze = Some(FreezePolicy {
        fee_per_day: m("0.50"),
        min_days: 1,
        max_days: 10,
        max_times: 1,
    });
    let mut p = buy(prod, "2026-05-01T08:00:00");
    p.handle(
        &Command::RequestFreeze {
            days: 3,
            reason: String::new(),
        },
        t("2026-05-02T08:00:00"),
    )
    .unwrap();
    p.handle(&Command::ApproveFreeze, t("2026-05-02T08:00:00"))
        .unwrap();
    // frozen after exactly 1 day: still 1 day used while frozen, and after the automatic unfreeze
    assert_eq!(p.liability(t("2026-05-04T08:00:00")).unwrap(), m("18"));
    p.handle(&Command::Tick, t("2026-05-05T08:00:00")).unwrap();
    assert_eq!(p.liability(t("2026-05-05T08:00:00")).unwrap(), m("18"));
    assert_eq!(p.ends_at(), Some(t("2026-05-11T08:00:00")));
    assert_eq!(p.fees_charged, m("1.50"));
}

// ---------------------------------------------------------------- replay, apply, serde

#[test]
fn replay_and_corrupt_logs() {
    let s = Scenario {
        purchase: Purchase::new("k", "r", swap30()),
        purchased_at: t("2026-05-01T08:00:00"),
        timeline: vec![
            Step {
                at: t("2026-05-02T08:00:00"),
                command: consume("o1"),
            },
            Step {
                at: t("2026-05-03T08:00:00"),
                command: Command::RequestFreeze {
                    days: 2,
                    reason: String::new(),
                },
            },
            Step {
                at: t("2026-05-03T08:00:00"),
                command: Command::ApproveFreeze,
            },
            Step {
                at: t("2026-06-20T08:00:00"),
                command: renew("r1"),
            },
        ],
    };
    let out = s.run().unwrap();
    assert_eq!(Package::replay(&out.events).unwrap(), out.package);
    assert!(Package::replay(&[]).is_err());
    assert!(Package::replay(&out.events[1..]).is_err());
    let mut p = out.package.clone();
    let before = p.clone();
    assert!(matches!(
        p.apply(&out.events[0]),
        Err(PackageError::EventMismatch { .. })
    ));
    assert!(
        p.apply(&Event::Activated {
            automatic: false,
            start: t("2026-05-01T08:00:00"),
            end: t("2026-05-01T08:00:00"),
            at: t("2026-05-01T08:00:00")
        })
        .is_err()
    );
    assert!(
        p.apply(&Event::Closed {
            at: t("2026-05-01T08:00:00")
        })
        .is_err()
    );
    assert_eq!(p, before);
    // serde round trip
    let js = serde_json::to_string(&out).unwrap();
    assert_eq!(serde_json::from_str::<ScenarioOutcome>(&js).unwrap(), out);
    let js = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scenario>(&js).unwrap(), s);
    // a failing step names itself
    let mut bad = s.clone();
    bad.timeline.push(Step {
        at: t("2026-06-21T08:00:00"),
        command: Command::Unfreeze,
    });
    assert!(matches!(
        bad.run(),
        Err(PackageError::StepFailed { step: 4, .. })
    ));
    let e = serde_json::to_value(PackageError::StepFailed {
        step: 1,
        at: t("2026-06-21T08:00:00"),
        error: Box::new(PackageError::NoFreezeRequest),
    })
    .unwrap();
    assert_eq!(e["error"]["kind"], "no_freeze_request");
}

// ---------------------------------------------------------------- properties

fn arb_product() -> impl Strategy<Value = Product> {
    (
        0i64..50_000,
        prop_oneof![
            (1u32..60).prop_map(Validity::Days),
            (1u32..3).prop_map(Validity::Months)
        ],
        prop_oneof![
            Just(Swaps::None),
            (1u32..40).prop_map(Swaps::Limited),
            Just(Swaps::Unlimited)
        ],
        any::<bool>(),
        prop::option::of(1u32..6),
        prop::option::of(0u32..40),
        any::<bool>(),
        prop::option::of(0i64..2_000),
    )
        .prop_map(
            |(price, validity, swaps, rental, cap, window, stack, unit)| {
                let rental = rental || swaps == Swaps::None;
                Product {
                    id: format!("p{price}"),
                    name: String::new(),
                    price: Money::from_minor(price, Currency::CNY),
                    validity,
                    swaps,
                    rental,
                    daily_swap_cap: if swaps == Swaps::None { None } else { cap },
                    deposit: None,
                    eligibility: Eligibility::default(),
                    activation: if price % 2 == 0 {
                        Activation::Immediate
                    } else {
                        Activation::FirstUse {
                            auto_after_days: Some(2),
                        }
                    },
                    renewal: RenewalPolicy {
                        mode: if stack {
                            RenewalMode::Stack
                        } else {
                            RenewalMode::Extend
                        },
                        ..RenewalPolicy::default()
                    },
                    freeze: Some(FreezePolicy {
                        fee_per_day: Money::from_minor(100, Currency::CNY),
                        min_days: 1,
                        max_days: 5,
                        max_times: 2,
                    }),
                    overdue: Some(OverduePolicy {
                        grace_hours: 12,
                        fee_per_day: Money::from_minor(300, Currency::CNY),
                        fee_cap: None,
                    }),
                    refund: window.map(|window_days| RefundPolicy { window_days }),
                    unit_price: unit.map(|u| Money::from_minor(u, Currency::CNY)),
                    daily_rate: None,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Consume(u8, u32),
    Reverse(u8),
    Renew(u8, i64),
    RequestFreeze(u32),
    Approve,
    Reject,
    Unfreeze,
    Change(Box<Product>),
    Refund,
    Close,
    Cancel,
    End,
    Tick,
    Activate,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, 1u32..3).prop_map(|(o, n)| Op::Consume(o, n)),
        1 => (0u8..12).prop_map(Op::Reverse),
        2 => (0u8..4, 0i64..30_000).prop_map(|(r, p)| Op::Renew(r, p)),
        1 => (0u32..7).prop_map(Op::RequestFreeze),
        2 => Just(Op::Approve),
        1 => Just(Op::Reject),
        2 => Just(Op::Unfreeze),
        1 => arb_product().prop_map(|p| Op::Change(Box::new(p))),
        1 => Just(Op::Refund),
        1 => Just(Op::Close),
        1 => Just(Op::Cancel),
        1 => Just(Op::End),
        1 => Just(Op::Tick),
        1 => Just(Op::Activate),
    ]
}

fn to_command(op: &Op) -> Command {
    match op {
        Op::Consume(o, n) => Command::Consume {
            order_id: format!("o{o}"),
            swaps: *n,
        },
        Op::Reverse(o) => Command::ReverseConsumption {
            order_id: format!("o{o}"),
        },
        Op::Renew(r, p) => Command::Renew {
            renewal_id: format!("r{r}"),
            paid: Some(Money::from_minor(*p, Currency::CNY)),
            rider: RiderProfile::default(),
        },
        Op::RequestFreeze(d) => Command::RequestFreeze {
            days: *d,
            reason: String::new(),
        },
        Op::Approve => Command::ApproveFreeze,
        Op::Reject => Command::RejectFreeze {
            reason: String::new(),
        },
        Op::Unfreeze => Command::Unfreeze,
        Op::Change(p) => Command::Change {
            to: p.clone(),
            rider: RiderProfile::default(),
        },
        Op::Refund => Command::Refund,
        Op::Close => Command::Close,
        Op::Cancel => Command::Cancel,
        Op::End => Command::End,
        Op::Tick => Command::Tick,
        Op::Activate => Command::Activate,
    }
}

/// Net payments into the package according to its events.
fn net_paid(events: &[Event]) -> Money {
    let mut sum = Money::zero(Currency::CNY);
    for e in events {
        sum = match e {
            Event::Purchased { paid, .. } | Event::Renewed { paid, .. } => {
                sum.checked_add(*paid).unwrap()
            }
            Event::Changed { charge, refund, .. } => sum
                .checked_add(*charge)
                .unwrap()
                .checked_sub(*refund)
                .unwrap(),
            Event::Refunded { amount, .. } => sum.checked_sub(*amount).unwrap(),
            _ => sum,
        };
    }
    sum
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random lives: replaying the events rebuilds the state; a failed command
    /// changes nothing; refunds stay within [0, net paid]; consumption is
    /// idempotent by order id.
    #[test]
    fn random_lives_keep_the_invariants(
        product in arb_product(),
        ops in prop::collection::vec((prop_oneof![0i64..4, 0i64..80], arb_op()), 1..40),
    ) {
        let start = t("2026-05-01T08:00:00");
        let (mut p, mut events) = Package::purchase(&Purchase::new("k", "r", product), start).unwrap();
        let mut now = start;
        for (hours, op) in &ops {
            now += chrono::TimeDelta::hours(*hours);
            // a refund quote never exceeds what is held and is never negative
            let q = p.refund_quote(now).unwrap();
            prop_assert!(!q.amount.is_negative());
            prop_assert!(q.amount.checked_cmp(&net_paid(&events)).unwrap().is_le());
            for tv in &q.terms {
                prop_assert!(!tv.value.is_negative());
                prop_assert!(tv.value.checked_cmp(&tv.paid).unwrap().is_le());
            }
            let before = p.clone();
            let cmd = to_command(op);
            match p.handle(&cmd, now) {
                Ok(ev) => {
                    // the same command again is a no-op for idempotent commands
                    if matches!(cmd, Command::Consume { .. } | Command::Renew { .. } | Command::ReverseConsumption { .. }) {
                        let again = p.decide(&cmd, now).unwrap();
                        prop_assert!(again.is_empty(), "replay of {:?} emitted {:?}", cmd, again);
                    }
                    if let Command::Refund = cmd {
                        let paid = ev.iter().find_map(|e| match e { Event::Refunded { amount, .. } => Some(*amount), _ => None }).unwrap();
                        prop_assert_eq!(paid, q.amount);
                    }
                    events.extend(ev);
                }
                Err(_) => prop_assert_eq!(&p, &before),
            }
            prop_assert!(!p.paid_total.is_negative());
            prop_assert_eq!(p.paid_total, net_paid(&events));
            // swaps used per term equal the non-reversed consumptions of that term
            for (i, term) in p.terms.iter().enumerate() {
                let used: u32 = p.consumptions.values().filter(|c| c.term == i && !c.reversed).map(|c| c.swaps).sum();
                prop_assert_eq!(term.used, used);
                if let Some(q) = term.quota { prop_assert!(term.used <= q); }
            }
        }
        prop_assert_eq!(Package::replay(&events).unwrap(), p);
    }

    /// A swap replayed any number of times, in any order with others, is consumed once.
    #[test]
    fn consumption_idempotent_by_order_id(orders in prop::collection::vec(0u8..8, 1..40)) {
        let prod = product(r#"{"id":"u","price":"10.00","validity":{"days":30},"swaps":"unlimited"}"#);
        let start = t("2026-05-01T08:00:00");
        let (mut p, _) = Package::purchase(&Purchase::new("k", "r", prod), start).unwrap();
        for (i, o) in orders.iter().enumerate() {
            let now = start + chrono::TimeDelta::minutes(i64::try_from(i).unwrap());
            p.handle(&consume(&format!("o{o}")), now).unwrap();
        }
        let distinct: std::collections::BTreeSet<_> = orders.iter().collect();
        prop_assert_eq!(p.terms[0].used as usize, distinct.len());
        prop_assert_eq!(p.consumptions.len(), distinct.len());
    }
}

#[test]
fn timeline_steps_reject_unknown_fields() {
    let ok: Step =
        serde_json::from_str(r#"{"at":"2026-05-01T08:00:00","type":"consume","order_id":"o1"}"#)
            .unwrap();
    assert_eq!(ok.command, consume("o1"));
    assert!(
        serde_json::from_str::<Step>(
            r#"{"at":"2026-05-01T08:00:00","type":"consume","order_id":"o1","swapz":2}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<Step>(r#"{"at":"2026-05-01T08:00:00","type":"teleport"}"#).is_err()
    );
    let renew: Step = serde_json::from_str(
        r#"{"at":"2026-05-01T08:00:00","type":"renew","renewal_id":"r","paid":"9.90"}"#,
    )
    .unwrap();
    assert!(matches!(renew.command, Command::Renew { paid: Some(p), .. } if p == m("9.90")));
}

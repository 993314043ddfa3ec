//! Unit and property tests of the rental machine.

use super::*;
use crate::custody::{CabinetId, Custody, StoreId};
use crate::package::Event as PEvent;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// 2025-03-01 09:00 UTC (17:00 local, UTC+8) plus `h` hours.
fn t(h: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + Duration::hours(h)
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
const RIDER: RiderId = RiderId(7);
fn store() -> Location {
    Location::Store { store: StoreId(3) }
}
fn slot() -> Location {
    Location::Slot {
        cabinet: CabinetId(20_001),
        slot: 5,
    }
}
/// rent-30: 90.00 for 30 days (3.00 a day) from the hand-over, deposit
/// 300.00; freeze 1.00 a started day (1 to 15 days, twice); overdue 5.00 a
/// started day after 24 h of grace, at most 100.00.
pub(crate) fn product() -> Product {
    serde_json::from_str(
        r#"{"id": "rent-30", "price": "90.00", "validity": {"days": 30}, "rental": true,
        "deposit": "300.00", "activation": {"mode": "first_use"},
        "freeze": {"fee_per_day": "1.00", "max_days": 15, "max_times": 2},
        "overdue": {"grace_hours": 24, "fee_per_day": "5.00", "fee_cap": "100.00"}}"#,
    )
    .unwrap()
}
pub(crate) fn request(mode: DepositMode) -> RentalRequest {
    RentalRequest {
        order: 500,
        rider: RIDER,
        identity_verified: true,
        product: Box::new(product()),
        paid: None,
        source: PaymentSource::Channel,
        profile: RiderProfile::default(),
        deposit_mode: mode,
        policy: RentalPolicy::default(),
        utc_offset_s: 8 * 3600,
    }
}
fn settle(
    fees: &str,
    damage: &str,
    lost: bool,
    deducted: &str,
    refunded: &str,
    charged: &str,
) -> RentalEffect {
    RentalEffect::SettleDeposit {
        order: 500,
        package: "rt500".into(),
        fees: m(fees),
        damage: m(damage),
        lost,
        deducted: m(deducted),
        refunded: m(refunded),
        charged: m(charged),
    }
}
fn command(seq: u32, command: package::Command) -> RentalEffect {
    RentalEffect::PackageCommand {
        order: 500,
        package: "rt500".into(),
        seq,
        command: Box::new(command),
        source: PaymentSource::Channel,
    }
}
/// The names of the package events in a decision.
fn package_events(d: &RentalDecision) -> Vec<&'static str> {
    d.events
        .iter()
        .flat_map(|e| match e {
            RentalEvent::Package { events, .. } => events.iter().map(PEvent::name).collect(),
            _ => Vec::new(),
        })
        .collect()
}

struct Run {
    r: Rental,
    log: Vec<RentalEvent>,
    book: Custody,
}

impl Run {
    fn new() -> Self {
        let mut book = Custody::new();
        book.record(
            MoveRequest::register(MoveId::new(0, 1), bat(1), store()),
            t(0),
        )
        .unwrap();
        book.record(
            MoveRequest::register(MoveId::new(0, 2), bat(2), slot()),
            t(0),
        )
        .unwrap();
        Run {
            r: Rental::new(),
            log: Vec::new(),
            book,
        }
    }
    fn go(&mut self, i: RentalInput, h: i64) -> RentalDecision {
        let before = self.r.clone();
        let d = self.r.step(&i, t(h)).unwrap();
        if d.events.is_empty() {
            assert_eq!(self.r, before);
        }
        self.log.extend(d.events.iter().cloned());
        assert_eq!(Rental::replay(&self.log), self.r);
        assert_eq!(d.next_deadline, self.r.next_deadline());
        let bytes = postcard::to_allocvec(&self.r).unwrap();
        assert_eq!(postcard::from_bytes::<Rental>(&bytes).unwrap(), self.r);
        for e in &d.effects {
            if let RentalEffect::CustodyMove(mv) = e {
                self.book.record(mv.clone(), t(h)).unwrap();
            }
        }
        d
    }
    fn issued(mode: DepositMode) -> Self {
        let mut r = Run::new();
        r.go(RentalInput::Start(request(mode)), 0);
        r.go(RentalInput::DepositSecured, 0);
        r.go(
            RentalInput::Issue {
                battery: bat(1),
                from: store(),
            },
            1,
        );
        r
    }
}

#[test]
fn full_life_returned_fine() {
    let mut r = Run::new();
    let d = r.go(RentalInput::Start(request(DepositMode::Paid)), 0);
    assert!(matches!(
        &d.effects[..],
        [RentalEffect::BuyPackage { order: 500, package, deposit: DepositMode::Paid, source: PaymentSource::Channel, purchase }]
            if package == "rt500" && purchase.rider_id == "7" && purchase.product == product()
    ));
    assert_eq!(package_events(&d), ["purchased"]);
    assert_eq!(r.r.phase(), RentalPhase::AwaitingDeposit);
    assert_eq!(r.r.package().unwrap().status, Status::Pending);
    r.go(RentalInput::DepositSecured, 0);
    r.go(RentalInput::DepositSecured, 0); // duplicate
    let d = r.go(
        RentalInput::Issue {
            battery: bat(1),
            from: store(),
        },
        1,
    );
    // the package starts at the hand-over: 30 days from t(1)
    assert_eq!(d.effects[0], command(0, package::Command::Activate));
    assert_eq!(package_events(&d), ["activated"]);
    assert_eq!(
        r.book.location(bat(1)),
        Some(&Location::Rider { rider: RIDER })
    );
    assert_eq!(r.r.expires_at(), Some(t(1 + 30 * 24)));
    // expiring notice 48 h before the end
    assert_eq!(r.r.next_deadline(), Some(t(1 + 28 * 24)));
    let d = r.go(RentalInput::Tick, 1 + 28 * 24);
    assert!(d.effects.contains(&RentalEffect::NotifyRider {
        rider: RIDER,
        order: 500,
        notice: RentalNotice::Expiring
    }));
    let slot6 = Location::Slot {
        cabinet: CabinetId(20_001),
        slot: 6,
    };
    // returned a day early: the package ends now, the day left lapses
    let d = r.go(RentalInput::Return { to: slot6 }, 1 + 29 * 24);
    assert_eq!(d.effects[0], command(1, package::Command::End));
    assert_eq!(package_events(&d), ["ended"]);
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 29 * 24),
        overdue_fee: m("0.00")
    }));
    let d = r.go(RentalInput::Inspect(Inspection::Fine), 1 + 29 * 24);
    assert!(
        d.effects
            .contains(&settle("0", "0", false, "0", "300.00", "0"))
    );
    assert_eq!(
        r.r.outcome(),
        Some(&RentalOutcome::Returned {
            deducted: m("0"),
            refunded: m("300.00"),
            charged: m("0")
        })
    );
    assert_eq!(r.book.occupant(CabinetId(20_001), 6), Some(bat(1)));
}

#[test]
fn identity_not_verified_is_rejected() {
    let mut req = request(DepositMode::Paid);
    req.identity_verified = false;
    let mut r = Rental::new();
    let d = r.step(&RentalInput::Start(req), t(0)).unwrap();
    assert!(d.effects.is_empty());
    assert!(r.package().is_none());
    assert_eq!(
        r.outcome(),
        Some(&RentalOutcome::Rejected {
            reason: RentalReason::IdentityNotVerified
        })
    );
}

#[test]
fn deposit_failed_and_cancel_before_issue() {
    let mut r = Run::new();
    r.go(RentalInput::Start(request(DepositMode::CreditWaiver)), 0);
    let d = r.go(RentalInput::DepositFailed, 0);
    assert!(d.effects.is_empty()); // the purchase failed: nothing to give back
    assert_eq!(
        r.r.outcome(),
        Some(&RentalOutcome::Cancelled {
            reason: RentalReason::DepositFailed
        })
    );
    let mut r = Run::new();
    let d = r.go(RentalInput::Start(request(DepositMode::CreditWaiver)), 0);
    assert!(matches!(
        &d.effects[..],
        [RentalEffect::BuyPackage {
            deposit: DepositMode::CreditWaiver,
            ..
        }]
    ));
    r.go(RentalInput::DepositSecured, 0);
    // cancelled before the hand-over: the package never started, so it is
    // cancelled in full (90.00 back), and the whole hold is voided
    let d = r.go(RentalInput::Cancel, 2);
    assert_eq!(
        d.effects,
        vec![
            command(0, package::Command::Cancel),
            settle("0", "0", false, "0", "300.00", "0"),
        ]
    );
    assert!(d.events.iter().any(|e| matches!(
        e,
        RentalEvent::Package { events, .. }
            if matches!(&events[..], [PEvent::Refunded { amount, .. }] if *amount == m("90.00"))
    )));
}

#[test]
fn overdue_fee_per_started_day_after_the_grace() {
    // expired at t(1 + 720); returned 23 h later, within the 24 h grace: no fee
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Tick, 1 + 28 * 24);
    let d = r.go(RentalInput::Tick, 1 + 30 * 24);
    assert_eq!(package_events(&d), ["expired"]);
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    assert!(d.effects.contains(&RentalEffect::NotifyRider {
        rider: RIDER,
        order: 500,
        notice: RentalNotice::Overdue
    }));
    // next: the end of the grace period
    assert_eq!(r.r.next_deadline(), Some(t(1 + 31 * 24)));
    let d = r.go(RentalInput::Return { to: store() }, 1 + 31 * 24 - 1);
    assert_eq!(package_events(&d), ["closed"]);
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 31 * 24 - 1),
        overdue_fee: m("0.00")
    }));
    // returned 2 days and 1 hour late: 25 h after the grace = 2 started
    // days x 5.00 = 10.00
    let mut r = Run::issued(DepositMode::Paid);
    let d = r.go(RentalInput::Return { to: store() }, 1 + 32 * 24 + 1);
    assert_eq!(
        package_events(&d),
        ["expired", "overdue_started", "overdue_settled", "closed"]
    );
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 32 * 24 + 1),
        overdue_fee: m("10.00")
    }));
    assert_eq!(r.r.fees_due(), Some(m("10.00")));
    let d = r.go(
        RentalInput::Inspect(Inspection::Damaged { fee: m("20.00") }),
        1 + 32 * 24 + 2,
    );
    // 10 + 20 = 30 deducted, 270 refunded
    assert!(
        d.effects
            .contains(&settle("10.00", "20.00", false, "30.00", "270.00", "0"))
    );
}

#[test]
fn renewal_extends_from_the_current_end() {
    let mut r = Run::issued(DepositMode::Paid);
    let d = r.go(RentalInput::Renew { paid: None }, 5);
    assert_eq!(
        d.effects,
        vec![command(
            1,
            package::Command::Renew {
                renewal_id: "rt500-r1".into(),
                paid: None,
                rider: RiderProfile::default(),
            }
        )]
    );
    // extend: the end moves out by one validity, 30 days
    assert_eq!(r.r.expires_at(), Some(t(1 + 60 * 24)));
    // renewing while expired (in the grace) restarts from now, no fee
    r.go(RentalInput::Tick, 1 + 58 * 24);
    r.go(RentalInput::Tick, 1 + 60 * 24);
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    let d = r.go(RentalInput::Renew { paid: None }, 1 + 60 * 24 + 5);
    assert_eq!(package_events(&d), ["renewed"]);
    assert_eq!(r.r.phase(), RentalPhase::InUse);
    assert_eq!(r.r.expires_at(), Some(t(1 + 90 * 24 + 5)));
    // the package's own rules: a renewal paid in another currency is refused
    assert!(matches!(
        r.r.step(
            &RentalInput::Renew {
                paid: Some(m("1 USD"))
            },
            t(1 + 61 * 24)
        ),
        Err(RentalError::Package { .. })
    ));
}

#[test]
fn freeze_stops_the_clock_and_costs_per_started_day() {
    let mut r = Run::issued(DepositMode::Paid);
    let freeze = |days| RentalInput::Freeze {
        days,
        reason: "holiday".into(),
    };
    // longer than the product allows (15 days): the package refuses
    assert!(matches!(
        r.r.step(&freeze(16), t(10)),
        Err(RentalError::Package { .. })
    ));
    let d = r.go(freeze(5), 10);
    assert_eq!(d.effects.len(), 2);
    assert_eq!(package_events(&d), ["freeze_requested", "frozen"]);
    r.go(freeze(5), 11); // duplicate
    // the freeze ends by itself after 5 days
    assert_eq!(r.r.next_deadline(), Some(t(10 + 5 * 24)));
    // frozen 49 hours: 3 started days x 1.00; the end moves 49 h
    let d = r.go(RentalInput::Unfreeze, 59);
    assert_eq!(d.effects, vec![command(3, package::Command::Unfreeze)]);
    assert_eq!(
        d.events.last(),
        Some(&RentalEvent::Unfrozen {
            expires_at: t(1 + 30 * 24 + 49),
            fee: m("3.00")
        })
    );
    assert_eq!(r.r.fees_due(), Some(m("3.00")));
    // a second freeze ends by itself: 2 days, 2 started days x 1.00
    r.go(freeze(2), 60);
    let d = r.go(RentalInput::Tick, 60 + 48);
    assert_eq!(d.effects, vec![command(6, package::Command::Tick)]);
    assert_eq!(
        d.events.last(),
        Some(&RentalEvent::Unfrozen {
            expires_at: t(1 + 30 * 24 + 49 + 48),
            fee: m("2.00")
        })
    );
    // a third is one too many
    assert!(matches!(
        r.r.step(&freeze(2), t(120)),
        Err(RentalError::Package { .. })
    ));
    r.go(RentalInput::Return { to: store() }, 120);
    let d = r.go(RentalInput::Inspect(Inspection::Fine), 120);
    assert!(
        d.effects
            .contains(&settle("5.00", "0", false, "5.00", "295.00", "0"))
    );
}

#[test]
fn returned_while_frozen_pays_the_freeze() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(
        RentalInput::Freeze {
            days: 3,
            reason: String::new(),
        },
        10,
    );
    // frozen 30 h: 2 started days x 1.00, settled by the end
    let d = r.go(RentalInput::Return { to: store() }, 40);
    assert_eq!(package_events(&d), ["unfrozen", "ended"]);
    assert_eq!(r.r.fees_due(), Some(m("2.00")));
    assert_eq!(r.r.phase(), RentalPhase::Inspecting);
}

#[test]
fn warranty_replacement_moves_both_batteries() {
    let mut r = Run::issued(DepositMode::Paid);
    let maint = Location::Maintenance { work_order: 9 };
    let d = r.go(
        RentalInput::Replace {
            battery: bat(2),
            from: slot(),
            old_to: maint.clone(),
        },
        20,
    );
    assert_eq!(d.effects.len(), 2);
    assert_eq!(r.book.location(bat(1)), Some(&maint));
    assert_eq!(
        r.book.location(bat(2)),
        Some(&Location::Rider { rider: RIDER })
    );
    assert_eq!(r.r.battery(), Some(bat(2)));
    r.go(RentalInput::Return { to: store() }, 30);
    assert_eq!(r.book.location(bat(2)), Some(&store()));
}

#[test]
fn lost_battery_takes_the_deposit() {
    let mut r = Run::issued(DepositMode::CreditWaiver);
    let d = r.go(RentalInput::DeclareLost, 50);
    assert_eq!(package_events(&d), ["ended"]);
    assert!(
        d.effects
            .contains(&settle("0", "0", true, "300.00", "0", "0"))
    );
    assert_eq!(r.book.location(bat(1)), Some(&Location::Retired));
    assert_eq!(
        r.r.outcome(),
        Some(&RentalOutcome::Lost { charged: m("0") })
    );
}

#[test]
fn overdue_past_the_limit_defaults() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Tick, 1 + 28 * 24);
    r.go(RentalInput::Tick, 1 + 30 * 24);
    // the grace ends: overdue fees accrue from now
    let d = r.go(RentalInput::Tick, 1 + 31 * 24);
    assert_eq!(package_events(&d), ["overdue_started"]);
    let at = 1 + 60 * 24;
    assert_eq!(r.r.next_deadline(), Some(t(at)));
    let d = r.go(RentalInput::Tick, at);
    // 29 started days after the grace x 5.00 = 145.00, capped at 100.00;
    // the whole deposit is taken, fees first
    assert_eq!(package_events(&d), ["overdue_settled", "closed"]);
    assert!(
        d.effects
            .contains(&settle("100.00", "0", true, "300.00", "0", "0"))
    );
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, RentalEffect::RaiseAlert { .. }))
    );
    assert_eq!(r.r.phase(), RentalPhase::Closed);
    assert_eq!(r.r.next_deadline(), None);
}

#[test]
fn damage_above_the_deposit_is_charged_to_the_wallet() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Return { to: store() }, 2);
    let d = r.go(
        RentalInput::Inspect(Inspection::Damaged { fee: m("350.00") }),
        3,
    );
    assert!(
        d.effects
            .contains(&settle("0", "350.00", false, "300.00", "0", "50.00"))
    );
    assert_eq!(
        r.r.outcome(),
        Some(&RentalOutcome::Returned {
            deducted: m("300.00"),
            refunded: m("0"),
            charged: m("50.00")
        })
    );
}

#[test]
fn errors_and_duplicates() {
    let mut r = Rental::new();
    assert_eq!(
        r.step(&RentalInput::Tick, t(0)),
        Err(RentalError::NotStarted)
    );
    assert_eq!(
        r.step(&RentalInput::Unfreeze, t(0)),
        Err(RentalError::NotStarted)
    );
    let mut run = Run::issued(DepositMode::Paid);
    assert!(matches!(
        run.r.step(&RentalInput::Inspect(Inspection::Fine), t(2)),
        Err(RentalError::NotAllowed { .. })
    ));
    run.go(RentalInput::Return { to: store() }, 3);
    assert!(
        run.go(RentalInput::Return { to: store() }, 3)
            .events
            .is_empty()
    );
    assert!(matches!(
        run.r.step(
            &RentalInput::Inspect(Inspection::Damaged { fee: m("-1") }),
            t(4)
        ),
        Err(RentalError::Invalid { .. })
    ));
    // requests the package rules cannot run
    let refused = |f: &dyn Fn(&mut RentalRequest)| {
        let mut req = request(DepositMode::Paid);
        f(&mut req);
        Rental::new().step(&RentalInput::Start(req), t(0))
    };
    assert!(matches!(
        refused(&|r| r.product.rental = false),
        Err(RentalError::Invalid { field, .. }) if field == "product.rental"
    ));
    assert!(matches!(
        refused(&|r| r.product.activation = Activation::Immediate),
        Err(RentalError::Invalid { field, .. }) if field == "product.activation"
    ));
    assert!(matches!(
        refused(&|r| r.product.activation = Activation::FirstUse {
            auto_after_days: Some(3)
        }),
        Err(RentalError::Invalid { .. })
    ));
    assert!(matches!(
        refused(&|r| r.utc_offset_s = 90_000),
        Err(RentalError::Invalid { field, .. }) if field == "utc_offset_s"
    ));
    assert!(matches!(
        refused(&|r| r.product.deposit = Some(m("-1"))),
        Err(RentalError::Package { .. })
    ));
    assert!(matches!(
        refused(&|r| r.paid = Some(m("1.001"))),
        Err(RentalError::Package { .. })
    ));
}

#[test]
fn nothing_to_pay_is_secured_at_once() {
    let mut req = request(DepositMode::Paid);
    req.product.deposit = None;
    req.paid = Some(m("0"));
    let mut r = Rental::new();
    let d = r.step(&RentalInput::Start(req), t(0)).unwrap();
    assert_eq!(d.events.last(), Some(&RentalEvent::DepositSecured));
    assert_eq!(r.phase(), RentalPhase::AwaitingIssue);
}

fn arb_input(o: u8) -> RentalInput {
    match o {
        0 => RentalInput::DepositSecured,
        1 => RentalInput::Issue {
            battery: bat(1),
            from: store(),
        },
        2 => RentalInput::Renew { paid: None },
        3 => RentalInput::Freeze {
            days: 3,
            reason: String::new(),
        },
        4 => RentalInput::Unfreeze,
        5 => RentalInput::Return { to: store() },
        6 => RentalInput::Inspect(Inspection::Damaged { fee: m("12.34") }),
        7 => RentalInput::Replace {
            battery: bat(2),
            from: slot(),
            old_to: Location::Maintenance { work_order: 1 },
        },
        8 => RentalInput::DeclareLost,
        9 => RentalInput::Cancel,
        10 => RentalInput::DepositFailed,
        _ => RentalInput::Tick,
    }
}

proptest! {
    /// Random rental lives: custody moves always apply, replay is exact,
    /// deposit settlement never takes more than the deposit and adds up,
    /// and every rental closes once enough time passes.
    #[test]
    fn random_rentals(ops in proptest::collection::vec((0u8..13, 1i64..400), 0..30), waiver in any::<bool>()) {
        let mut r = Run::new();
        let mode = if waiver { DepositMode::CreditWaiver } else { DepositMode::Paid };
        r.go(RentalInput::Start(request(mode)), 0);
        let mut h = 0;
        for (o, dt) in ops {
            h += dt;
            if let Ok(d) = r.r.step(&arb_input(o), t(h)) {
                r.log.extend(d.events.iter().cloned());
                for e in &d.effects {
                    match e {
                        RentalEffect::CustodyMove(mv) => { prop_assert!(r.book.record(mv.clone(), t(h)).is_ok(), "{:?}", mv); }
                        RentalEffect::SettleDeposit { fees, damage, lost, deducted, refunded, charged, .. } => {
                            prop_assert_eq!(deducted.checked_add(*refunded).unwrap(), m("300.00"));
                            let owed = if *lost { *fees } else { fees.checked_add(*damage).unwrap() };
                            let covered = if *lost { deducted.checked_min(*fees).unwrap() } else { *deducted };
                            prop_assert_eq!(covered.checked_add(*charged).unwrap(), owed);
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(d.next_deadline, r.r.next_deadline());
            }
            prop_assert_eq!(Rental::replay(&r.log), r.r.clone());
            prop_assert_eq!(r.book.battery_count(), 2);
        }
        // with the rider's cooperation (or by default) everything closes
        for i in [RentalInput::DepositSecured, RentalInput::Unfreeze, RentalInput::Return { to: store() }, RentalInput::Inspect(Inspection::Fine)] {
            if let Ok(d) = r.r.step(&i, t(h)) { r.log.extend(d.events); }
        }
        if r.r.phase() == RentalPhase::AwaitingIssue {
            let _ = r.r.step(&RentalInput::Cancel, t(h));
        }
        prop_assert_eq!(r.r.phase(), RentalPhase::Closed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    /// The same random lives with every effect carried out by the executor
    /// on the books: nothing fails; after every step the books reconcile
    /// (ledger balanced, the package's liability account equal to
    /// `Package::liability(now)`: the days used recognised as revenue,
    /// agents equal to their splits, deposits to their held balance); the
    /// package on the books and the rental's copy agree (brought to the same
    /// time); every fee is booked once (the settlement's fees are the
    /// package's); and a closed rental leaves its deposit settled and no
    /// open credit hold.
    #[test]
    fn random_rentals_on_the_books(ops in proptest::collection::vec((0u8..12, 1i64..400), 0..30), waiver in any::<bool>()) {
        use crate::executor::tests::{balanced, config, rider_books};
        use crate::executor::{Carried, Executor};
        use crate::ledger::Key;
        let mut book = Custody::new();
        book.record(MoveRequest::register(MoveId::new(0, 1), bat(1), store()), t(0)).unwrap();
        book.record(MoveRequest::register(MoveId::new(0, 2), bat(2), slot()), t(0)).unwrap();
        let mut ex = Executor::new(config(), book).with_books(rider_books());
        let mut r = Rental::new();
        let mode = if waiver { DepositMode::CreditWaiver } else { DepositMode::Paid };
        let mut inputs = vec![(RentalInput::Start(request(mode)), 0)];
        let mut h = 0;
        for (o, dt) in ops {
            h += dt;
            // the host reports deposit_failed only when the purchase failed
            inputs.push((arb_input(if o == 10 { 11 } else { o }), h));
        }
        for i in [RentalInput::DepositSecured, RentalInput::Unfreeze, RentalInput::Return { to: store() }, RentalInput::Inspect(Inspection::Fine), RentalInput::Cancel] {
            inputs.push((i, h));
        }
        let pkg = Key::new("rt500").unwrap();
        let mut settled = 0;
        for (i, at) in inputs {
            if let Ok(d) = r.step(&i, t(at)) {
                let carried = ex.carry_out_rental(Some(CabinetId(20_001)), RIDER, 500, &d.effects, t(at));
                prop_assert!(carried.len() == d.effects.len(), "{:?}", carried);
                for (e, c) in d.effects.iter().zip(&carried) {
                    prop_assert!(!matches!(c, Carried::Failed { .. }), "{:?}: {:?}", e, c);
                    if let RentalEffect::SettleDeposit { deducted, refunded, charged, .. } = e {
                        settled += 1;
                        let b = ex.books().unwrap();
                        let s = b.receipt(&Key::new("rt500.settle").unwrap()).unwrap().settlement.clone().unwrap();
                        prop_assert_eq!((s.deducted, s.refunded, s.charged), (*deducted, *refunded, *charged));
                    }
                }
            }
            prop_assert!(balanced(&ex));
            prop_assert_eq!(ex.custody().battery_count(), 2);
            // the two copies of the package agree, brought to the same time
            let b = ex.books().unwrap();
            if let (Some(mine), Some(theirs)) = (r.package(), b.package(&pkg)) {
                let local = r.local(t(at));
                let (mut x, mut y) = (mine.clone(), theirs.package.clone());
                let _ = x.handle(&package::Command::Tick, local);
                let _ = y.handle(&package::Command::Tick, local);
                prop_assert_eq!(x, y);
            }
        }
        prop_assert_eq!(r.phase(), RentalPhase::Closed);
        prop_assert!(settled <= 1);
        let b = ex.books().unwrap();
        prop_assert!(b.ledger().open_holds().is_empty());
        if let Some(p) = b.package(&pkg) {
            prop_assert!(p.fees_due.is_empty());
            let d = b.deposits().deposit(&pkg).unwrap();
            // settled: refund applied for, released or captured, or all of it taken
            let open = matches!(d.status, crate::deposit::DepositStatus::Held | crate::deposit::DepositStatus::Rented);
            prop_assert!(!open || d.remaining().is_zero(), "{:?}", d);
        }
    }
}

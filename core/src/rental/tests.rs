//! Unit and property tests of the rental machine.

use super::*;
use crate::custody::{CabinetId, Custody, StoreId};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

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
fn terms() -> RentalTerms {
    RentalTerms {
        package: 77,
        days: 30,
        deposit: m("300.00"),
        overdue_daily_fee: m("5.00"),
        grace_hours: 24,
        freeze_daily_fee: m("1.00"),
        expiring_notice_hours: 48,
        default_after_days: 30,
    }
}
fn request(mode: DepositMode) -> RentalRequest {
    RentalRequest {
        order: 500,
        rider: RIDER,
        identity_verified: true,
        terms: terms(),
        deposit_mode: mode,
    }
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
    assert_eq!(
        d.effects,
        vec![RentalEffect::CollectDeposit {
            order: 500,
            amount: m("300.00")
        }]
    );
    assert_eq!(r.r.phase(), RentalPhase::AwaitingDeposit);
    r.go(RentalInput::DepositSecured, 0);
    r.go(RentalInput::DepositSecured, 0); // duplicate
    r.go(
        RentalInput::Issue {
            battery: bat(1),
            from: store(),
        },
        1,
    );
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
    let d = r.go(RentalInput::Return { to: slot6 }, 1 + 29 * 24);
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 29 * 24),
        overdue_fee: m("0.00")
    }));
    let d = r.go(RentalInput::Inspect(Inspection::Fine), 1 + 29 * 24);
    assert!(d.effects.contains(&RentalEffect::RefundDeposit {
        order: 500,
        amount: m("300.00")
    }));
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
    r.go(RentalInput::DepositFailed, 0);
    assert_eq!(
        r.r.outcome(),
        Some(&RentalOutcome::Cancelled {
            reason: RentalReason::DepositFailed
        })
    );
    let mut r = Run::new();
    let d = r.go(RentalInput::Start(request(DepositMode::CreditWaiver)), 0);
    assert_eq!(
        d.effects,
        vec![RentalEffect::PlaceCreditHold {
            order: 500,
            amount: m("300.00")
        }]
    );
    r.go(RentalInput::DepositSecured, 0);
    let d = r.go(RentalInput::Cancel, 0);
    assert_eq!(d.effects, vec![RentalEffect::VoidCreditHold { order: 500 }]);
}

#[test]
fn overdue_fee_per_started_day_after_grace() {
    // returned 24 h after expiry: within grace, no fee
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Tick, 1 + 28 * 24);
    let d = r.go(RentalInput::Tick, 1 + 30 * 24);
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    assert!(d.effects.contains(&RentalEffect::NotifyRider {
        rider: RIDER,
        order: 500,
        notice: RentalNotice::Overdue
    }));
    let d = r.go(RentalInput::Return { to: store() }, 1 + 31 * 24);
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 31 * 24),
        overdue_fee: m("0.00")
    }));
    // returned 2 days and 1 hour late: 3 started days x ¥5 = ¥15
    let mut r = Run::issued(DepositMode::Paid);
    let d = r.go(RentalInput::Return { to: store() }, 1 + 32 * 24 + 1);
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(1 + 32 * 24 + 1),
        overdue_fee: m("15.00")
    }));
    let d = r.go(
        RentalInput::Inspect(Inspection::Damaged { fee: m("20.00") }),
        1 + 32 * 24 + 2,
    );
    // 15 + 20 = 35 deducted, 265 refunded
    assert!(d.effects.contains(&RentalEffect::DeductDeposit {
        order: 500,
        amount: m("35.00"),
        reason: Deduction::Damage
    }));
    assert!(d.effects.contains(&RentalEffect::RefundDeposit {
        order: 500,
        amount: m("265.00")
    }));
}

#[test]
fn renewal_extends_from_the_current_end() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Renew { days: 10 }, 5);
    assert_eq!(r.r.expires_at(), Some(t(1 + 40 * 24)));
    // renewing while overdue brings it back in use
    r.go(RentalInput::Tick, 1 + 38 * 24);
    r.go(RentalInput::Tick, 1 + 40 * 24);
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    r.go(RentalInput::Renew { days: 30 }, 1 + 41 * 24);
    assert_eq!(r.r.phase(), RentalPhase::InUse);
    assert_eq!(r.r.expires_at(), Some(t(1 + 70 * 24)));
}

#[test]
fn freeze_stops_the_clock_and_costs_per_started_day() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Freeze, 10);
    r.go(RentalInput::Freeze, 11); // duplicate
    assert_eq!(r.r.next_deadline(), None);
    // frozen 49 hours: 3 started days, ¥3; the end moves 49 h
    let d = r.go(RentalInput::Unfreeze, 59);
    assert_eq!(
        d.events,
        vec![RentalEvent::Unfrozen {
            expires_at: t(1 + 30 * 24 + 49),
            fee: m("3.00")
        }]
    );
    assert_eq!(r.r.fees_due(), Some(m("3.00")));
    r.go(RentalInput::Return { to: store() }, 100);
    let d = r.go(RentalInput::Inspect(Inspection::Fine), 100);
    assert!(d.effects.contains(&RentalEffect::DeductDeposit {
        order: 500,
        amount: m("3.00"),
        reason: Deduction::Fees
    }));
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
fn lost_battery_captures_the_deposit() {
    let mut r = Run::issued(DepositMode::CreditWaiver);
    let d = r.go(RentalInput::DeclareLost, 50);
    assert!(d.effects.contains(&RentalEffect::CaptureCreditHold {
        order: 500,
        amount: m("300.00"),
        reason: Deduction::Loss
    }));
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
    let at = 1 + 60 * 24;
    assert_eq!(r.r.next_deadline(), Some(t(at)));
    let d = r.go(RentalInput::Tick, at);
    // 30 started days x ¥5 = ¥150 <= deposit; the whole deposit is captured
    assert!(d.effects.contains(&RentalEffect::DeductDeposit {
        order: 500,
        amount: m("300.00"),
        reason: Deduction::Loss
    }));
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, RentalEffect::RaiseAlert { .. }))
    );
    assert_eq!(r.r.phase(), RentalPhase::Closed);
    assert_eq!(r.r.next_deadline(), None);
}

#[test]
fn fees_above_the_deposit_are_charged_to_the_wallet() {
    let mut r = Run::issued(DepositMode::Paid);
    r.go(RentalInput::Return { to: store() }, 2);
    let d = r.go(
        RentalInput::Inspect(Inspection::Damaged { fee: m("350.00") }),
        3,
    );
    assert!(d.effects.contains(&RentalEffect::DeductDeposit {
        order: 500,
        amount: m("300.00"),
        reason: Deduction::Damage
    }));
    assert!(d.effects.contains(&RentalEffect::ChargeWallet {
        order: 500,
        amount: m("50.00")
    }));
}

#[test]
fn errors_and_duplicates() {
    let mut r = Rental::new();
    assert_eq!(
        r.step(&RentalInput::Tick, t(0)),
        Err(RentalError::NotStarted)
    );
    assert_eq!(
        r.step(&RentalInput::Freeze, t(0)),
        Err(RentalError::NotStarted)
    );
    let mut run = Run::issued(DepositMode::Paid);
    assert!(matches!(
        run.r.step(&RentalInput::Inspect(Inspection::Fine), t(2)),
        Err(RentalError::NotAllowed { .. })
    ));
    assert!(matches!(
        run.r.step(&RentalInput::Renew { days: 0 }, t(2)),
        Err(RentalError::Invalid { .. })
    ));
    run.go(RentalInput::Return { to: store() }, 3);
    assert!(
        run.go(RentalInput::Return { to: store() }, 3)
            .events
            .is_empty()
    );
    let mut bad = request(DepositMode::Paid);
    bad.terms.deposit = m("-1");
    assert!(matches!(
        Rental::new().step(&RentalInput::Start(bad), t(0)),
        Err(RentalError::Invalid { .. })
    ));
}

proptest! {
    /// Random rental lives: custody moves always apply, replay is exact,
    /// deposit settlement never takes more than the deposit, and every
    /// rental closes once enough time passes.
    #[test]
    fn random_rentals(ops in proptest::collection::vec((0u8..12, 1i64..400), 0..30), waiver in any::<bool>()) {
        let mut r = Run::new();
        let mode = if waiver { DepositMode::CreditWaiver } else { DepositMode::Paid };
        r.go(RentalInput::Start(request(mode)), 0);
        let mut h = 0;
        for (o, dt) in ops {
            h += dt;
            let i = match o {
                0 => RentalInput::DepositSecured,
                1 => RentalInput::Issue { battery: bat(1), from: store() },
                2 => RentalInput::Renew { days: 3 },
                3 => RentalInput::Freeze,
                4 => RentalInput::Unfreeze,
                5 => RentalInput::Return { to: store() },
                6 => RentalInput::Inspect(Inspection::Damaged { fee: m("12.34") }),
                7 => RentalInput::Replace { battery: bat(2), from: slot(), old_to: Location::Maintenance { work_order: 1 } },
                8 => RentalInput::DeclareLost,
                9 => RentalInput::Cancel,
                _ => RentalInput::Tick,
            };
            if let Ok(d) = r.r.step(&i, t(h)) {
                r.log.extend(d.events.iter().cloned());
                for e in &d.effects {
                    match e {
                        RentalEffect::CustodyMove(mv) => { prop_assert!(r.book.record(mv.clone(), t(h)).is_ok(), "{:?}", mv); }
                        RentalEffect::DeductDeposit { amount, .. } | RentalEffect::CaptureCreditHold { amount, .. } => {
                            prop_assert!(amount.checked_cmp(&m("300")).unwrap() != core::cmp::Ordering::Greater);
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
    /// The same random lives with every effect carried out by the executor
    /// on a ledger with wallets and deposits: custody and deposit operations
    /// never fail (only a wallet too poor for fees above the deposit may
    /// refuse a charge), the ledger balances after every step, and a closed
    /// rental leaves no open credit hold.
    #[test]
    fn random_rentals_on_the_ledger(ops in proptest::collection::vec((0u8..12, 1i64..400), 0..30), waiver in any::<bool>()) {
        use crate::executor::tests::{balanced, config, rider_books};
        use crate::executor::{Carried, Executor, ExecutorError};
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
            inputs.push((match o {
                0 => RentalInput::DepositSecured,
                1 => RentalInput::Issue { battery: bat(1), from: store() },
                2 => RentalInput::Renew { days: 3 },
                3 => RentalInput::Freeze,
                4 => RentalInput::Unfreeze,
                5 => RentalInput::Return { to: store() },
                6 => RentalInput::Inspect(Inspection::Damaged { fee: m("12.34") }),
                7 => RentalInput::Replace { battery: bat(2), from: slot(), old_to: Location::Maintenance { work_order: 1 } },
                8 => RentalInput::DeclareLost,
                9 => RentalInput::Cancel,
                _ => RentalInput::Tick,
            }, h));
        }
        for i in [RentalInput::DepositSecured, RentalInput::Unfreeze, RentalInput::Return { to: store() }, RentalInput::Inspect(Inspection::Fine), RentalInput::Cancel] {
            inputs.push((i, h));
        }
        for (i, at) in inputs {
            if let Ok(d) = r.step(&i, t(at)) {
                let carried = ex.carry_out_rental(RiderId(7), &d.effects, t(at));
                for (e, c) in d.effects.iter().zip(&carried) {
                    let poor = matches!(
                        (e, c),
                        (RentalEffect::ChargeWallet { .. }, Carried::Failed { error: ExecutorError::Books { .. } })
                    );
                    prop_assert!(poor || !matches!(c, Carried::Failed { .. }), "{:?}: {:?}", e, c);
                }
            }
            prop_assert!(balanced(&ex));
            prop_assert_eq!(ex.custody().battery_count(), 2);
        }
        prop_assert_eq!(r.phase(), RentalPhase::Closed);
        prop_assert!(ex.books().unwrap().ledger().open_holds().is_empty());
    }
}

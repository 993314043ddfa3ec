//! Scenario replay: an initial state and a list of timestamped commands and
//! device events in; every step's events, effects and next deadline, then
//! the final state, out. The CLI's `chargeswap flow run` and the golden
//! vectors in `tests/vectors/flows/` use this, so bindings replaying the same
//! files agree with Rust.
//!
//! Custody moves among the effects (swap, charging at a cabinet slot,
//! rental) are recorded in a custody book seeded from the scenario, so a
//! scenario shows where every battery ends up.
//!
//! ```
//! use chargeswap_core::flow::{run, Scenario};
//! let scenario: Scenario = serde_json::from_str(r#"{
//!   "machine": "charging",
//!   "steps": [
//!     {"at": "2025-03-01T20:00:00Z", "input": {"start": {
//!         "order": 9, "rider": 7, "point": {"pile": {"pile": 30001, "connector": 1}},
//!         "point_online": true, "point_busy": false,
//!         "auth": {"pre_auth": {"hold": "30.00"}},
//!         "policy": {"start_timeout_s": 60, "stop_timeout_s": 60, "meter_stall_s": 900, "offline_grace_s": 600}}}},
//!     {"at": "2025-03-01T20:00:05Z", "input": {"device": "start_failed"}}
//!   ]}"#).unwrap();
//! let out = run(&scenario);
//! let json = serde_json::to_value(&out).unwrap();
//! assert_eq!(json["summary"]["outcome"]["not_charged"]["reason"], "start_failed");
//! ```

use serde::{Deserialize, Serialize};

use crate::charging::{
    ChargingDecision, ChargingEffect, ChargingError, ChargingEvent, ChargingInput, ChargingSession,
};
use crate::custody::{Custody, CustodyError, Location, MoveId, MoveRequest, Timestamp};
use crate::numbering::DeviceNo;
use crate::rental::{Rental, RentalDecision, RentalEffect, RentalError, RentalEvent, RentalInput};
use crate::swap::{Decision, SwapEffect, SwapError, SwapEvent, SwapInput, SwapSession};

/// Where a battery starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The battery.
    pub battery: DeviceNo,
    /// Where it is.
    pub at: Location,
}

/// One timestamped input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step<I> {
    /// When it arrives.
    pub at: Timestamp,
    /// The command or device event.
    pub input: I,
}

/// A scenario for one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "machine", rename_all = "snake_case")]
pub enum Scenario {
    /// A swap session.
    Swap {
        /// Batteries in the custody book at the start.
        #[serde(default)]
        custody: Vec<Placement>,
        /// The steps.
        steps: Vec<Step<SwapInput>>,
    },
    /// A charging session.
    Charging {
        /// Batteries in the custody book at the start.
        #[serde(default)]
        custody: Vec<Placement>,
        /// The steps.
        steps: Vec<Step<ChargingInput>>,
        /// When given, every `request_price` is answered at once with the
        /// tariff's quote of the session (an extra step with a `priced` input).
        #[serde(default)]
        tariff: Option<Box<crate::tariff::Tariff>>,
        /// Seconds east of UTC of the tariff's local time (default 28 800, China).
        #[serde(default = "china")]
        utc_offset_s: i32,
    },
    /// A rental.
    Rental {
        /// Batteries in the custody book at the start.
        #[serde(default)]
        custody: Vec<Placement>,
        /// The steps.
        steps: Vec<Step<RentalInput>>,
    },
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput<Ev, Ef, Er> {
    /// When.
    pub at: Timestamp,
    /// The events (empty on error).
    pub events: Vec<Ev>,
    /// The effects (empty on error).
    pub effects: Vec<Ef>,
    /// The next deadline.
    pub next_deadline: Option<Timestamp>,
    /// The machine's error, if the input was refused (the state is unchanged).
    pub error: Option<Er>,
    /// Custody moves among the effects that the book refused.
    pub custody_errors: Vec<CustodyError>,
}

/// A short, stable summary of the final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The phase, as the order view names it.
    pub phase: String,
    /// The outcome, once ended (the machine's outcome type as JSON-able data).
    pub outcome: Option<AnyOutcome>,
    /// Whether the machine has finished (no deadline left).
    pub finished: bool,
}

/// The outcome of whichever machine ran, for [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyOutcome {
    /// A swap outcome.
    Swap(crate::swap::Outcome),
    /// A charging outcome.
    Charging(crate::charging::ChargingOutcome),
    /// A rental outcome.
    Rental(crate::rental::RentalOutcome),
}

/// The run of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRun<S, Ev, Ef, Er> {
    /// Per step.
    pub steps: Vec<StepOutput<Ev, Ef, Er>>,
    /// The summary of the final state.
    pub summary: Summary,
    /// The final state in full (its serde form is the snapshot form).
    pub state: S,
    /// Every battery of the custody book with its final location.
    pub custody: Vec<Placement>,
}

/// The output of [`run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlowOutput {
    /// A swap run.
    Swap(FlowRun<SwapSession, SwapEvent, SwapEffect, SwapError>),
    /// A charging run.
    Charging(FlowRun<ChargingSession, ChargingEvent, ChargingEffect, ChargingError>),
    /// A rental run.
    Rental(FlowRun<Rental, RentalEvent, RentalEffect, RentalError>),
}

fn china() -> i32 {
    8 * 3600
}

fn seed(custody: &[Placement], errors: &mut Vec<CustodyError>) -> Custody {
    let mut book = Custody::new();
    for (i, p) in custody.iter().enumerate() {
        let id = MoveId::new(0, u32::try_from(i).unwrap_or(u32::MAX));
        let r = MoveRequest::register(id, p.battery, p.at.clone());
        if let Err(e) = book.record(r, custody_epoch()) {
            errors.push(e);
        }
    }
    book
}

fn custody_epoch() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

fn placements(book: &Custody) -> Vec<Placement> {
    book.locations()
        .into_iter()
        .map(|(battery, at)| Placement { battery, at })
        .collect()
}

fn record_moves<'a, I: Iterator<Item = &'a MoveRequest>>(
    book: &mut Custody,
    moves: I,
    now: Timestamp,
) -> Vec<CustodyError> {
    moves
        .filter_map(|m| book.record(m.clone(), now).err())
        .collect()
}

/// Replays a scenario. Never fails: refused inputs and refused custody moves
/// are reported per step.
pub fn run(scenario: &Scenario) -> FlowOutput {
    match scenario {
        Scenario::Swap { custody, steps } => {
            let mut errs = Vec::new();
            let mut book = seed(custody, &mut errs);
            let mut s = SwapSession::new();
            let mut out = Vec::new();
            for st in steps {
                let r: Result<Decision, SwapError> = s.step(&st.input, st.at);
                out.push(match r {
                    Ok(d) => {
                        let moves = d.effects.iter().filter_map(|e| match e {
                            SwapEffect::CustodyMove(m) => Some(m),
                            _ => None,
                        });
                        let custody_errors = record_moves(&mut book, moves, st.at);
                        StepOutput {
                            at: st.at,
                            events: d.events,
                            effects: d.effects,
                            next_deadline: d.next_deadline,
                            error: None,
                            custody_errors,
                        }
                    }
                    Err(e) => failed(st.at, e, s.next_deadline()),
                });
            }
            if let Some(first) = out.first_mut() {
                first.custody_errors.splice(0..0, errs);
            }
            let summary = Summary {
                phase: crate::order::swap_view(&s).phase,
                outcome: s.outcome().cloned().map(AnyOutcome::Swap),
                finished: s.is_finished(),
            };
            FlowOutput::Swap(FlowRun {
                steps: out,
                summary,
                custody: placements(&book),
                state: s,
            })
        }
        Scenario::Charging {
            custody,
            steps,
            tariff,
            utc_offset_s,
        } => {
            let mut errs = Vec::new();
            let mut book = seed(custody, &mut errs);
            let compiled = tariff.as_ref().map(|t| t.compile());
            let mut s = ChargingSession::new();
            let mut out = Vec::new();
            for st in steps {
                let mut inputs = vec![st.input.clone()];
                while let Some(input) = inputs.pop() {
                    let r: Result<ChargingDecision, ChargingError> = s.step(&input, st.at);
                    let mut pricing_error = None;
                    out.push(match r {
                        Ok(d) => {
                            let asks = d
                                .effects
                                .iter()
                                .any(|e| matches!(e, ChargingEffect::RequestPrice { .. }));
                            let moves = d.effects.iter().filter_map(|e| match e {
                                ChargingEffect::CustodyMove(m) => Some(m),
                                _ => None,
                            });
                            let custody_errors = record_moves(&mut book, moves, st.at);
                            match (&compiled, asks) {
                                (Some(Ok(c)), true) => match s.price(c, *utc_offset_s) {
                                    Ok(q) => inputs.push(ChargingInput::Priced { amount: q.total }),
                                    Err(e) => pricing_error = Some(e),
                                },
                                (Some(Err(e)), true) => {
                                    pricing_error =
                                        Some(ChargingError::Pricing { error: e.clone() })
                                }
                                _ => {}
                            }
                            StepOutput {
                                at: st.at,
                                events: d.events,
                                effects: d.effects,
                                next_deadline: d.next_deadline,
                                error: None,
                                custody_errors,
                            }
                        }
                        Err(e) => failed(st.at, e, s.next_deadline()),
                    });
                    if let Some(e) = pricing_error {
                        out.push(failed(st.at, e, s.next_deadline()));
                    }
                }
            }
            if let Some(first) = out.first_mut() {
                first.custody_errors.splice(0..0, errs);
            }
            let summary = Summary {
                phase: crate::order::charging_view(&s).phase,
                outcome: s.outcome().cloned().map(AnyOutcome::Charging),
                finished: s.is_finished(),
            };
            FlowOutput::Charging(FlowRun {
                steps: out,
                summary,
                custody: placements(&book),
                state: s,
            })
        }
        Scenario::Rental { custody, steps } => {
            let mut errs = Vec::new();
            let mut book = seed(custody, &mut errs);
            let mut s = Rental::new();
            let mut out = Vec::new();
            for st in steps {
                let r: Result<RentalDecision, RentalError> = s.step(&st.input, st.at);
                out.push(match r {
                    Ok(d) => {
                        let moves = d.effects.iter().filter_map(|e| match e {
                            RentalEffect::CustodyMove(m) => Some(m),
                            _ => None,
                        });
                        let custody_errors = record_moves(&mut book, moves, st.at);
                        StepOutput {
                            at: st.at,
                            events: d.events,
                            effects: d.effects,
                            next_deadline: d.next_deadline,
                            error: None,
                            custody_errors,
                        }
                    }
                    Err(e) => failed(st.at, e, s.next_deadline()),
                });
            }
            if let Some(first) = out.first_mut() {
                first.custody_errors.splice(0..0, errs);
            }
            let summary = Summary {
                phase: crate::order::rental_view(&s).phase,
                outcome: s.outcome().cloned().map(AnyOutcome::Rental),
                finished: s.phase() == crate::rental::RentalPhase::Closed,
            };
            FlowOutput::Rental(FlowRun {
                steps: out,
                summary,
                custody: placements(&book),
                state: s,
            })
        }
    }
}

fn failed<Ev, Ef, Er>(at: Timestamp, e: Er, next: Option<Timestamp>) -> StepOutput<Ev, Ef, Er> {
    StepOutput {
        at,
        events: Vec::new(),
        effects: Vec::new(),
        next_deadline: next,
        error: Some(e),
        custody_errors: Vec::new(),
    }
}

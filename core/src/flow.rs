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

/// One machine as the replay sees it: a step gives events, effects and the
/// next deadline, some effects are custody moves, and the final state has
/// a [`Summary`].
trait Machine {
    type Input;
    type Event;
    type Effect;
    type Error;
    /// Decide and apply one input.
    #[allow(clippy::type_complexity)]
    fn decide(
        &mut self,
        input: &Self::Input,
        at: Timestamp,
    ) -> Result<(Vec<Self::Event>, Vec<Self::Effect>, Option<Timestamp>), Self::Error>;
    /// The custody move an effect asks for, if it is one.
    fn custody_move(effect: &Self::Effect) -> Option<&MoveRequest>;
    /// The machine's next deadline.
    fn deadline(&self) -> Option<Timestamp>;
    /// The summary of the state.
    fn summary(&self) -> Summary;
}

impl Machine for SwapSession {
    type Input = SwapInput;
    type Event = SwapEvent;
    type Effect = SwapEffect;
    type Error = SwapError;
    fn decide(
        &mut self,
        input: &SwapInput,
        at: Timestamp,
    ) -> Result<(Vec<SwapEvent>, Vec<SwapEffect>, Option<Timestamp>), SwapError> {
        let d: Decision = self.step(input, at)?;
        Ok((d.events, d.effects, d.next_deadline))
    }
    fn custody_move(effect: &SwapEffect) -> Option<&MoveRequest> {
        match effect {
            SwapEffect::CustodyMove(m) => Some(m),
            _ => None,
        }
    }
    fn deadline(&self) -> Option<Timestamp> {
        self.next_deadline()
    }
    fn summary(&self) -> Summary {
        Summary {
            phase: crate::order::swap_view(self).phase,
            outcome: self.outcome().cloned().map(AnyOutcome::Swap),
            finished: self.is_finished(),
        }
    }
}

impl Machine for ChargingSession {
    type Input = ChargingInput;
    type Event = ChargingEvent;
    type Effect = ChargingEffect;
    type Error = ChargingError;
    fn decide(
        &mut self,
        input: &ChargingInput,
        at: Timestamp,
    ) -> Result<(Vec<ChargingEvent>, Vec<ChargingEffect>, Option<Timestamp>), ChargingError> {
        let d: ChargingDecision = self.step(input, at)?;
        Ok((d.events, d.effects, d.next_deadline))
    }
    fn custody_move(effect: &ChargingEffect) -> Option<&MoveRequest> {
        match effect {
            ChargingEffect::CustodyMove(m) => Some(m),
            _ => None,
        }
    }
    fn deadline(&self) -> Option<Timestamp> {
        self.next_deadline()
    }
    fn summary(&self) -> Summary {
        Summary {
            phase: crate::order::charging_view(self).phase,
            outcome: self.outcome().cloned().map(AnyOutcome::Charging),
            finished: self.is_finished(),
        }
    }
}

impl Machine for Rental {
    type Input = RentalInput;
    type Event = RentalEvent;
    type Effect = RentalEffect;
    type Error = RentalError;
    fn decide(
        &mut self,
        input: &RentalInput,
        at: Timestamp,
    ) -> Result<(Vec<RentalEvent>, Vec<RentalEffect>, Option<Timestamp>), RentalError> {
        let d: RentalDecision = self.step(input, at)?;
        Ok((d.events, d.effects, d.next_deadline))
    }
    fn custody_move(effect: &RentalEffect) -> Option<&MoveRequest> {
        match effect {
            RentalEffect::CustodyMove(m) => Some(m),
            _ => None,
        }
    }
    fn deadline(&self) -> Option<Timestamp> {
        self.next_deadline()
    }
    fn summary(&self) -> Summary {
        Summary {
            phase: crate::order::rental_view(self).phase,
            outcome: self.outcome().cloned().map(AnyOutcome::Rental),
            finished: self.phase() == crate::rental::RentalPhase::Closed,
        }
    }
}

type Output<M> = StepOutput<<M as Machine>::Event, <M as Machine>::Effect, <M as Machine>::Error>;

/// A replay in progress: the custody book and the steps so far.
struct Replay<M: Machine> {
    book: Custody,
    seed_errors: Vec<CustodyError>,
    out: Vec<Output<M>>,
}

impl<M: Machine> Replay<M> {
    fn new(custody: &[Placement]) -> Replay<M> {
        let mut seed_errors = Vec::new();
        let book = seed(custody, &mut seed_errors);
        Replay {
            book,
            seed_errors,
            out: Vec::new(),
        }
    }

    /// Steps the machine, records its custody moves, and returns the
    /// step's effects (none when the input was refused).
    fn step(&mut self, m: &mut M, input: &M::Input, at: Timestamp) -> &[M::Effect] {
        let o = match m.decide(input, at) {
            Ok((events, effects, next_deadline)) => {
                let custody_errors = record_moves(
                    &mut self.book,
                    effects.iter().filter_map(M::custody_move),
                    at,
                );
                StepOutput {
                    at,
                    events,
                    effects,
                    next_deadline,
                    error: None,
                    custody_errors,
                }
            }
            Err(e) => failed(at, e, m.deadline()),
        };
        self.out.push(o);
        self.out.last().map_or(&[], |o| o.effects.as_slice())
    }

    fn finish(mut self, m: M) -> FlowRun<M, M::Event, M::Effect, M::Error> {
        if let Some(first) = self.out.first_mut() {
            first.custody_errors.splice(0..0, self.seed_errors);
        }
        FlowRun {
            steps: self.out,
            summary: m.summary(),
            custody: placements(&self.book),
            state: m,
        }
    }
}

/// Replays a scenario. Never fails: refused inputs and refused custody moves
/// are reported per step.
pub fn run(scenario: &Scenario) -> FlowOutput {
    match scenario {
        Scenario::Swap { custody, steps } => {
            let mut r = Replay::new(custody);
            let mut s = SwapSession::new();
            for st in steps {
                r.step(&mut s, &st.input, st.at);
            }
            FlowOutput::Swap(r.finish(s))
        }
        Scenario::Charging {
            custody,
            steps,
            tariff,
            utc_offset_s,
        } => {
            let mut r = Replay::new(custody);
            let compiled = tariff.as_ref().map(|t| t.compile());
            let mut s = ChargingSession::new();
            for st in steps {
                let mut inputs = vec![st.input.clone()];
                while let Some(input) = inputs.pop() {
                    let asks = r
                        .step(&mut s, &input, st.at)
                        .iter()
                        .any(|e| matches!(e, ChargingEffect::RequestPrice { .. }));
                    let pricing_error = match (&compiled, asks) {
                        (Some(Ok(c)), true) => match s.price(c, *utc_offset_s) {
                            Ok(q) => {
                                inputs.push(ChargingInput::Priced { amount: q.total });
                                None
                            }
                            Err(e) => Some(e),
                        },
                        (Some(Err(e)), true) => Some(ChargingError::Pricing { error: e.clone() }),
                        _ => None,
                    };
                    if let Some(e) = pricing_error {
                        r.out.push(failed(st.at, e, s.next_deadline()));
                    }
                }
            }
            FlowOutput::Charging(r.finish(s))
        }
        Scenario::Rental { custody, steps } => {
            let mut r = Replay::new(custody);
            let mut s = Rental::new();
            for st in steps {
                r.step(&mut s, &st.input, st.at);
            }
            FlowOutput::Rental(r.finish(s))
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

//! Battery BMS UART protocols: [`jbd`] (JBD / Xiaoxiang) and [`daly`].
//!
//! Both decode into typed readings in real units — volts, amps, amp-hours,
//! degrees Celsius, percent — as [`rust_decimal::Decimal`]s whose scale is
//! the wire resolution (a Daly pack voltage of raw 764 in 0.1 V reads
//! `76.4`; a JBD cell of 3300 mV reads `3.300`). Encoding takes the same
//! values and refuses any that the wire cannot carry exactly (too many
//! decimal places, out of range), so decode then encode gives the same
//! bytes, and encode then decode gives the same values.
//!
//! The scaling of every field is documented on the field and in
//! docs/protocol/bms.md.

pub mod daly;
pub mod jbd;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// `(raw + offset) × 10^-scale`: a wire integer in real units.
pub(crate) fn units(raw: i64, offset: i64, scale: u32) -> Decimal {
    Decimal::new(raw + offset, scale)
}

/// The inverse of [`units`]: `value × 10^scale − offset`, if that is an
/// integer within `min..=max`.
pub(crate) fn raw(value: Decimal, offset: i64, scale: u32, min: i64, max: i64) -> Option<i64> {
    let m = value.checked_mul(Decimal::from(10i64.checked_pow(scale)?))?;
    if !m.fract().is_zero() {
        return None;
    }
    let r = m.to_i64()?.checked_sub(offset)?;
    (min..=max).contains(&r).then_some(r)
}

/// Why a value could not be carried: for error messages.
pub(crate) fn range_text(offset: i64, scale: u32, min: i64, max: i64) -> String {
    format!(
        "{} to {} in steps of {}",
        units(min, offset, scale),
        units(max, offset, scale),
        Decimal::new(1, scale)
    )
}

/// Cell numbers (from 1) whose bit is set, bit 0 of `bits` being cell 1.
pub(crate) fn cells_from_bits(bits: u64, count: u8) -> Vec<u8> {
    let mut bits = bits & (u64::MAX >> (64 - u32::from(count.clamp(1, 64))));
    let mut out = Vec::with_capacity(bits.count_ones() as usize);
    while bits != 0 {
        out.push(bits.trailing_zeros() as u8 + 1);
        bits &= bits - 1;
    }
    out
}

/// The bits of cell numbers; `None` if one is outside `1..=count`.
pub(crate) fn bits_from_cells(cells: &[u8], count: u8) -> Option<u64> {
    cells.iter().try_fold(0u64, |acc, c| {
        (1..=count).contains(c).then(|| acc | 1 << (c - 1))
    })
}

pub(crate) fn zeros<const N: usize>(a: &[u8; N]) -> bool {
    a.iter().all(|b| *b == 0)
}

pub(crate) fn is_zero(b: &u8) -> bool {
    *b == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_round_trips_and_refuses_what_the_wire_cannot_carry() {
        let d = units(30113, -30000, 1);
        assert_eq!(d.to_string(), "11.3");
        assert_eq!(raw(d, -30000, 1, 0, 65535), Some(30113));
        assert_eq!(raw("11.35".parse().unwrap(), -30000, 1, 0, 65535), None);
        assert_eq!(
            raw("11.30".parse().unwrap(), -30000, 1, 0, 65535),
            Some(30113)
        );
        assert_eq!(raw("-3000.1".parse().unwrap(), -30000, 1, 0, 65535), None);
        assert_eq!(range_text(-40, 0, 0, 255), "-40 to 215 in steps of 1");
        assert_eq!(cells_from_bits(0b1010_0001, 8), vec![1, 6, 8]);
        assert_eq!(bits_from_cells(&[1, 6, 8], 8), Some(0b1010_0001));
        assert_eq!(bits_from_cells(&[9], 8), None);
        assert_eq!(bits_from_cells(&[0], 8), None);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod codec_tests;

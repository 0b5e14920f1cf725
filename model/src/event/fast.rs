//! Fast path of the event parser for the shape nearly every device sends: one flat JSON object holding exactly
//! the seven contract fields, in any order, with plain strings (no escapes) and plain numbers (at most 15
//! digits, no exponent), JSON whitespace allowed between tokens. Anything else — unknown, duplicate or missing
//! keys, escapes, other value types, long or exponent numbers, trailing text — returns `None` and is parsed by
//! the full `serde_json` path, which gives the reason. On what it accepts it yields exactly what the full path
//! yields (numbers of up to 15 digits are rounded the same by both), so the outcome never depends on the path;
//! the tests below check that on many shapes. It costs about half of the full path (criterion `parse`).

use std::borrow::Cow;

use super::{Field, RawEvent, Slots};

/// Parses `text` if it has the common shape, else `None`. Keys are expected in the contract's order (the
/// producer's): each is first compared with the next key of that order as one literal, and only matched by name
/// when it is not that one.
pub(super) fn parse(text: &str) -> Option<RawEvent<'_>> {
    let mut s = Scanner::new(text);
    let mut slots = Slots::default();
    s.skip_ws();
    s.expect(b'{')?;
    let mut expected = Field::ALL.into_iter();
    loop {
        s.skip_ws();
        let field = match expected.next() {
            Some(field) if s.key_is(field.name()) => field,
            _ => Field::from_key(s.string()?)?,
        };
        s.skip_ws();
        s.expect(b':')?;
        s.skip_ws();
        let fresh = match field {
            Field::DeviceId => slots.device_id.replace(Cow::Borrowed(s.string()?)).is_none(),
            Field::Ts => slots.ts.replace(s.unsigned()?.into()).is_none(),
            Field::Temperature => slots.temperature.replace(s.number()?).is_none(),
            Field::Humidity => slots.humidity.replace(s.number()?).is_none(),
            Field::Battery => slots.battery.replace(s.number()?).is_none(),
            Field::Status => slots.status.replace(Cow::Borrowed(s.string()?)).is_none(),
            Field::Location => slots.location.replace(Cow::Borrowed(s.string()?)).is_none(),
        };
        if !fresh {
            return None;
        }
        s.skip_ws();
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    s.skip_ws();
    if s.at != s.bytes.len() {
        return None;
    }
    slots.finish().ok()
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            bytes: text.as_bytes(),
            text,
            at: 0,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// Whether the next token is the key `name` (a string of exactly those bytes), consuming it if so.
    fn key_is(&mut self, name: &str) -> bool {
        let n = name.len();
        let hit = self.bytes.get(self.at) == Some(&b'"')
            && self.bytes.get(self.at + 1..self.at + 1 + n) == Some(name.as_bytes())
            && self.bytes.get(self.at + 1 + n) == Some(&b'"');
        if hit {
            self.at += n + 2;
        }
        hit
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes or control characters, borrowed from the text.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => {}
            }
        }
        // Both ends sit next to an ASCII quote, so they are character boundaries of the (valid UTF-8) text.
        self.text.get(start..self.at - 1)
    }

    /// The digits of a JSON integer part (no leading zero unless it is `0`), at most `max` of them, with their
    /// value.
    fn digits(&mut self, max: usize) -> Option<(u64, usize)> {
        let start = self.at;
        let mut value = 0u64;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
            // At most 19 digits are kept (checked below), so this cannot overflow before the check fails.
            value = value.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.at += 1;
        }
        let n = self.at - start;
        let leading_zero = n > 1 && self.bytes[start] == b'0';
        (n > 0 && n <= max && !leading_zero).then_some((value, n))
    }

    /// A non-negative integer of at most 19 digits (it fits a `u64`).
    fn unsigned(&mut self) -> Option<u64> {
        let (value, _) = self.digits(19)?;
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            return None;
        }
        Some(value)
    }

    /// A number of at most 15 digits without exponent: `-?int(.frac)?`. Its value is computed as `serde_json`
    /// computes it, `digits as f64` divided by a power of ten: both operands are exact (below 2^53 and 10^22),
    /// so the result is the correctly rounded one either way. `-0` without a fraction is left to the full path
    /// (it reads it as the integer 0, that is +0.0).
    fn number(&mut self) -> Option<f64> {
        let negative = self.bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        let (mut significand, mut total) = self.digits(15)?;
        let mut scale = 0;
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
                if total == 15 {
                    return None;
                }
                significand = significand * 10 + u64::from(d - b'0');
                total += 1;
                scale += 1;
                self.at += 1;
            }
            if scale == 0 {
                return None;
            }
        } else if negative && self.bytes[int_start] == b'0' {
            return None;
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            return None;
        }
        let value = significand as f64 / POW10[scale];
        Some(if negative { -value } else { value })
    }
}

/// Exact powers of ten up to the 14 fraction digits a 15-digit number can have.
const POW10: [f64; 15] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
];

#[cfg(test)]
mod tests {
    use super::super::parse_fields;
    use super::*;

    /// The full path alone (what `parse_fields` does without the fast path).
    fn full(text: &str) -> Option<RawEvent<'_>> {
        super::super::parse_fields_full(text).ok()
    }

    fn same(a: &RawEvent<'_>, b: &RawEvent<'_>) -> bool {
        a.device_id == b.device_id
            && a.ts == b.ts
            && a.temperature.to_bits() == b.temperature.to_bits()
            && a.humidity.to_bits() == b.humidity.to_bits()
            && a.battery.to_bits() == b.battery.to_bits()
            && a.status == b.status
            && a.location == b.location
    }

    /// Whatever the fast path accepts, the full path accepts with the very same fields.
    fn check(text: &str) -> bool {
        match parse(text) {
            None => false,
            Some(fast) => {
                let full = full(text).unwrap_or_else(|| panic!("fast path accepted {text:?}"));
                assert!(same(&fast, &full), "fast path differs on {text:?}");
                true
            }
        }
    }

    const CANONICAL: &str = r#"{"device_id":"device-abc123","ts":1730638574123,"temperature":24.7,"humidity":55.3,"battery":82.5,"status":"ok","location":"lab"}"#;

    #[test]
    fn keys_in_the_contracts_order_read_as_the_full_parser_reads_them() {
        let numbers = [
            "0",
            "-1",
            "-0.0",
            "21.72",
            "100",
            "0.30000000000001",
            "123456789012345",
            "1e2",
            "-0",
            "7.",
        ];
        let strings = ["device-a1b2c3", "🔥-sensor", "", "x y", "a\\\"b", "ok"];
        let ts = ["0", "1730638574123", "18446744073709551615", "-5", "1.5", "01"];
        let mut taken = 0;
        for i in 0..3000usize {
            let pick = |list: &[&'static str], k: usize| list[(i / k + i * k) % list.len()];
            let text = format!(
                r#"{{"device_id":"{}","ts":{},"temperature":{},"humidity":{},"battery":{},"status":"{}","location":"{}"}}{}"#,
                pick(&strings, 1),
                pick(&ts, 2),
                pick(&numbers, 3),
                pick(&numbers, 5),
                pick(&numbers, 7),
                pick(&strings, 11),
                pick(&strings, 13),
                ["", "\n", " "][i % 3],
            );
            if check(&text) {
                taken += 1;
            }
        }
        assert!(taken > 100, "only {taken} texts in the contract's order taken");
        // Departures from the order or the spacing are read all the same.
        assert!(check(&CANONICAL.replace(r#""ts":"#, r#""ts" :"#)));
        assert!(check(&format!(" {CANONICAL}")));
    }

    #[test]
    fn the_producers_shape_takes_the_fast_path() {
        assert!(check(CANONICAL));
        assert!(check(&format!("{CANONICAL}\n")));
        let spaced = r#" { "location" : "lab" , "status": "warn", "battery": 0, "humidity": 100.0,
            "temperature": -12.25, "ts": 0, "device_id": "🔥-sensor" } "#;
        assert!(check(spaced));
    }

    #[test]
    fn unusual_shapes_fall_back_to_the_full_parser() {
        for text in [
            r#"{"device_id":"a\"b","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":1e1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1.0,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":-1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":01,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":-0,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":1.,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":1.1234567890123456,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":"1","humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l","x":1}"#,
            r#"{"device_id":"a","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l","ts":2}"#,
            r#"{"device_id":"a","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok"}"#,
            r#"{"device_id":"a","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"} x"#,
            r#"{"device_id":"a","ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l",}"#,
            "{\"device_id\":\"a\tb\",\"ts\":1,\"temperature\":1,\"humidity\":1,\"battery\":1,\"status\":\"ok\",\"location\":\"l\"}",
            r#"{"device_id":null,"ts":1,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"{"device_id":"a","ts":99999999999999999999,"temperature":1,"humidity":1,"battery":1,"status":"ok","location":"l"}"#,
            r#"[1,2]"#,
            "",
            "{",
        ] {
            assert!(!check(text), "fast path took {text:?}");
        }
    }

    #[test]
    fn fast_and_full_paths_agree_on_generated_variants() {
        // A small deterministic generator (xorshift) over field order, spacing and number spellings.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let numbers = [
            "0",
            "1",
            "-1",
            "0.5",
            "-0.5",
            "-0.0",
            "21.72",
            "99.99",
            "100",
            "150.0",
            "-60",
            "0.1",
            "0.30000000000001",
            "123456789012345",
            "1234567.89012345",
            "3.141592653589793",
            "1e2",
            "-0",
            "00.1",
            "7.",
        ];
        let strings = [
            "device-a1b2c3",
            "lab",
            "🔥-sensor",
            "a/b",
            "..",
            "100%",
            "",
            "x y",
            "ok",
            "warn",
        ];
        let mut fast_taken = 0;
        for _ in 0..20_000 {
            let mut fields: Vec<String> = vec![
                format!("\"device_id\":\"{}\"", strings[next(strings.len() as u64) as usize]),
                format!(
                    "\"ts\":{}",
                    ["0", "1730638574123", "18446744073709551615", "-5", "1.5"][next(5) as usize]
                ),
                format!("\"temperature\":{}", numbers[next(numbers.len() as u64) as usize]),
                format!("\"humidity\":{}", numbers[next(numbers.len() as u64) as usize]),
                format!("\"battery\":{}", numbers[next(numbers.len() as u64) as usize]),
                format!("\"status\":\"{}\"", ["ok", "warn", "error", "bad"][next(4) as usize]),
                format!("\"location\":\"{}\"", strings[next(strings.len() as u64) as usize]),
            ];
            for i in (1..fields.len()).rev() {
                fields.swap(i, next(i as u64 + 1) as usize);
            }
            let sep = [",", ", ", " ,\n", ",\t"][next(4) as usize];
            let text = format!("{{{}}}", fields.join(sep)).replace(':', [":", ": ", " : "][next(3) as usize]);
            if check(&text) {
                fast_taken += 1;
            }
            // The public entry point gives the same answer as the full path, whichever path it took.
            let full = full(&text);
            match (parse_fields(&text).ok(), full) {
                (Some(a), Some(b)) => assert!(same(&a, &b), "{text:?}"),
                (None, None) => {}
                (a, b) => panic!("paths disagree on {text:?}: {:?} vs {:?}", a.is_some(), b.is_some()),
            }
        }
        assert!(fast_taken > 2_000, "fast path taken only {fast_taken} times");
    }
}

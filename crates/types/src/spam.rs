//! Spam scores as rspamd reports them, and the thresholds a customer sets for them.

use std::fmt;

/// A spam score in hundredths (rspamd reports decimals such as `6.5`); whole hundredths
/// keep comparisons exact and the value storable as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpamScore(i64);

/// The largest score accepted as a threshold (rspamd's own scale rarely passes 100).
const MAX_SCORE: i64 = 1_000_000;

impl SpamScore {
    pub const fn from_hundredths(hundredths: i64) -> Self {
        SpamScore(hundredths)
    }

    pub const fn hundredths(self) -> i64 {
        self.0
    }

    /// The nearest score to what rspamd sent; `None` for NaN or absurd values.
    pub fn from_f64(value: f64) -> Option<Self> {
        let hundredths = (value * 100.0).round();
        (hundredths.is_finite() && hundredths.abs() <= (MAX_SCORE * 100) as f64).then_some(SpamScore(hundredths as i64))
    }

    /// A score written like `6`, `6.5` or `-1.25` (at most two decimals).
    pub fn parse(text: &str) -> Result<Self, SpamScoreError> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 7 || fraction.len() > 2 || !all_digits(whole) || !all_digits(fraction) {
            return Err(SpamScoreError);
        }
        let whole: i64 = whole.parse().map_err(|_| SpamScoreError)?;
        let fraction: i64 =
            if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().map_err(|_| SpamScoreError)? };
        let value = whole * 100 + fraction;
        if value > MAX_SCORE * 100 {
            return Err(SpamScoreError);
        }
        Ok(SpamScore(if negative { -value } else { value }))
    }
}

impl fmt::Display for SpamScore {
    /// Two decimals, like rspamd's own `X-Spam-Score` (`6.50`, `-0.10`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a spam score is a number like 6 or 6.5 (at most two decimals), or none")]
pub struct SpamScoreError;

/// One of a customer's two spam thresholds (refuse, Junk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpamThreshold {
    /// The platform's default from `[spam]`.
    #[default]
    Default,
    /// Never: this action is not taken for any score.
    Never,
    /// From this score on.
    At(SpamScore),
}

impl SpamThreshold {
    /// `default`, `none` or a score.
    pub fn parse(text: &str) -> Result<Self, SpamScoreError> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("default") => Ok(SpamThreshold::Default),
            t if t.eq_ignore_ascii_case("none") => Ok(SpamThreshold::Never),
            t => SpamScore::parse(t).map(SpamThreshold::At),
        }
    }

    /// As stored: `None` for the default, `none`, or the score.
    pub fn to_stored(self) -> Option<String> {
        match self {
            SpamThreshold::Default => None,
            SpamThreshold::Never => Some("none".into()),
            SpamThreshold::At(score) => Some(score.to_string()),
        }
    }

    /// The threshold that applies, given the platform's default (`None`: never).
    pub fn resolve(self, default: Option<SpamScore>) -> Option<SpamScore> {
        match self {
            SpamThreshold::Default => default,
            SpamThreshold::Never => None,
            SpamThreshold::At(score) => Some(score),
        }
    }
}

impl fmt::Display for SpamThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpamThreshold::Default => f.write_str("default"),
            SpamThreshold::Never => f.write_str("none"),
            SpamThreshold::At(score) => score.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_and_print() {
        for (text, hundredths, shown) in [
            ("6", 600, "6.00"),
            ("6.5", 650, "6.50"),
            ("-1.25", -125, "-1.25"),
            ("0.05", 5, "0.05"),
            (" 15 ", 1500, "15.00"),
        ] {
            let score = SpamScore::parse(text).expect(text);
            assert_eq!(score.hundredths(), hundredths, "{text}");
            assert_eq!(score.to_string(), shown);
        }
        for bad in ["", "x", "6.555", "1e3", "6,5", "--1", "99999999", ".5", "+1"] {
            assert!(SpamScore::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SpamScore::from_f64(7.999), Some(SpamScore(800)));
        assert_eq!(SpamScore::from_f64(f64::NAN), None);
        assert_eq!(SpamScore::from_f64(1e300), None);
    }

    #[test]
    fn thresholds() {
        assert_eq!(SpamThreshold::parse("none"), Ok(SpamThreshold::Never));
        assert_eq!(SpamThreshold::parse("default"), Ok(SpamThreshold::Default));
        assert_eq!(SpamThreshold::parse("8"), Ok(SpamThreshold::At(SpamScore(800))));
        let default = Some(SpamScore(1500));
        assert_eq!(SpamThreshold::Default.resolve(default), default);
        assert_eq!(SpamThreshold::Never.resolve(default), None);
        assert_eq!(SpamThreshold::parse("9").map(|t| t.resolve(default)), Ok(Some(SpamScore(900))));
        for t in [SpamThreshold::Never, SpamThreshold::At(SpamScore(-50))] {
            assert_eq!(SpamThreshold::parse(&t.to_stored().expect("stored")), Ok(t));
        }
    }
}

//! The planner's one error type: a sentence that names the fix, with the line and column it points at and the
//! offending line of the job file under a caret.

use std::fmt;

/// Why a job file does not plan. Displayed as `line L, column C: message`, then the source line with a caret
/// under the column (without a position: the message alone).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SqlError {
    /// 1-based line of the offending token; 0 when the error has no position.
    pub line: usize,
    /// 1-based column (in characters) of the offending token; 0 when the error has no position.
    pub column: usize,
    /// One sentence: what is wrong and what to write instead.
    pub message: String,
    /// The offending source line (empty without a position).
    pub source_line: String,
}

impl SqlError {
    /// An error at `(line, column)` of `text` (0, 0: no position).
    pub fn at(text: &str, line: usize, column: usize, message: impl Into<String>) -> SqlError {
        let source_line = if line == 0 {
            String::new()
        } else {
            text.lines().nth(line - 1).unwrap_or("").to_string()
        };
        SqlError {
            line,
            column,
            message: message.into(),
            source_line,
        }
    }

    /// An error without a position.
    pub fn general(message: impl Into<String>) -> SqlError {
        SqlError {
            line: 0,
            column: 0,
            message: message.into(),
            source_line: String::new(),
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return f.write_str(&self.message);
        }
        writeln!(f, "line {}, column {}: {}", self.line, self.column, self.message)?;
        writeln!(f, "  {}", self.source_line)?;
        // Tabs are kept so the caret lines up with the text above it in a terminal.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "  {pad}^")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_the_line_and_a_caret_under_the_column() {
        let text = "SELECT a\nFROM\tt x y";
        let e = SqlError::at(text, 2, 8, "unexpected `x`");
        assert_eq!(
            e.to_string(),
            "line 2, column 8: unexpected `x`\n  FROM\tt x y\n      \t  ^"
        );
    }

    #[test]
    fn an_error_without_a_position_is_the_message_alone() {
        assert_eq!(SqlError::general("no SELECT").to_string(), "no SELECT");
    }
}

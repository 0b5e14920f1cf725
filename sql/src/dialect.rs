//! The job file's SQL dialect (Flink's and Arroyo's streaming SQL) as a `sqlparser` [`Dialect`]: which generic
//! constructs it takes, plus three hooks. `parse_prefix` reads Flink's table argument `TABLE name` inside
//! `TUMBLE(...)`/`HOP(...)`/`SESSION(...)`; `parse_infix` bounds how many operators a file may hold, so a
//! pathological expression is an error instead of a tree too deep to walk; `parse_statement` refuses the
//! statements a job file cannot hold with a message that names what it can. The text is never rewritten before
//! parsing, so every error keeps its line and column.

use std::cell::Cell;

use sqlparser::ast::{Expr, Ident, ObjectName, Statement};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// The most binary operators one job file may hold. Operator chains such as `a + a + ... + a` are parsed
/// without recursion but make a tree as deep as they are long; a real job holds a few dozen.
pub const MAX_OPERATORS: usize = 2_000;

/// The prefix that marks a table argument (`TABLE readings`) in the parsed tree: an `Expr::Prefixed` whose
/// prefix is this word. Plain SQL cannot produce that shape in this dialect (it has no string introducers).
pub(crate) const TABLE_ARGUMENT: &str = "TABLE";

/// The dialect of job files. One value parses one file: it counts the file's operators.
#[derive(Debug, Default)]
pub struct JobDialect {
    operators: Cell<usize>,
}

impl JobDialect {
    /// A dialect for one file.
    pub fn new() -> JobDialect {
        JobDialect::default()
    }
}

impl Dialect for JobDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || ch == '_'
    }

    /// Flink quotes identifiers with backticks, Arroyo (like standard SQL) with double quotes.
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    /// `JOIN t FOR SYSTEM_TIME AS OF r.event_time`: Flink's temporal join.
    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn require_interval_qualifier(&self) -> bool {
        false
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        // `TABLE name` as a function argument (Flink's window table functions). `TABLE(` is left to the
        // parser: in FROM it is the table-function form that holds the window call.
        let is_table = matches!(&parser.peek_token_ref().token, Token::Word(w) if w.keyword == Keyword::TABLE && w.quote_style.is_none());
        if !is_table || !matches!(parser.peek_nth_token_ref(1).token, Token::Word(_)) {
            return None;
        }
        parser.advance_token();
        let prefix = Ident::with_span(parser.get_current_token().span, TABLE_ARGUMENT);
        Some(parser.parse_object_name(false).map(|name: ObjectName| Expr::Prefixed {
            prefix,
            value: Box::new(Expr::CompoundIdentifier(
                name.0.into_iter().filter_map(|part| part.as_ident().cloned()).collect(),
            )),
        }))
    }

    fn parse_infix(&self, parser: &mut Parser, _expr: &Expr, _precedence: u8) -> Option<Result<Expr, ParserError>> {
        let seen = self.operators.get() + 1;
        self.operators.set(seen);
        if seen > MAX_OPERATORS {
            let at = parser.peek_token_ref().span.start;
            return Some(Err(ParserError::ParserError(format!(
                "the job holds more than {MAX_OPERATORS} operators; split the expression into computed columns{at}"
            ))));
        }
        None
    }

    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        let token = parser.peek_token_ref();
        let word = match &token.token {
            Token::Word(w) if w.quote_style.is_none() => w.keyword,
            _ => return None,
        };
        match word {
            Keyword::SELECT | Keyword::WITH => None,
            Keyword::VALUES => None,
            _ => Some(Err(ParserError::ParserError(format!(
                "a job file holds its CREATE TABLEs and one SELECT, not `{}`{}",
                token.token, token.span.start
            )))),
        }
    }
}

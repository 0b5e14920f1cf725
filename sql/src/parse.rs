//! Text to syntax tree: one `CREATE TABLE` (Flink's form: computed columns, `WATERMARK FOR`, `WITH` options),
//! read here with the parser's own helpers, and one query, read by `sqlparser` under [`JobDialect`]. Every
//! syntax error carries the line and column of the token it stopped at.

use sqlparser::ast::{self, Ident, Spanned};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::dialect::JobDialect;
use crate::error::SqlError;

/// The two statements of a job file.
pub(crate) struct JobAst {
    /// The tables in declared order: the stream the query reads and, for a temporal join, the versioned table.
    pub tables: Vec<TableDef>,
    pub query: Box<ast::Query>,
    /// Where the query starts.
    pub query_at: Location,
}

/// `CREATE TABLE name (elements) WITH (options)`.
pub(crate) struct TableDef {
    pub name: ast::ObjectName,
    pub elements: Vec<Element>,
    pub options: Vec<OptionDef>,
    /// Where the table's name is.
    pub at: Location,
}

/// One entry of the column list.
pub(crate) enum Element {
    /// `name type [NOT NULL] [[CONSTRAINT c] CHECK (expr)]...`
    Column {
        name: Ident,
        ty: ast::DataType,
        ty_at: Location,
        not_null: bool,
        checks: Vec<CheckDef>,
        /// Where `PRIMARY KEY NOT ENFORCED` follows the column, if it does.
        primary: Option<Location>,
    },
    /// `name AS expr`
    Computed { name: Ident, expr: ast::Expr },
    /// `WATERMARK FOR column AS expr`
    Watermark {
        column: Ident,
        expr: ast::Expr,
        at: Location,
    },
    /// `PRIMARY KEY (column) NOT ENFORCED` (or `PRIMARY KEY NOT ENFORCED` after a column): a versioned table's key.
    PrimaryKey { columns: Vec<Ident>, at: Location },
}

/// `[CONSTRAINT name] CHECK (expr)`.
pub(crate) struct CheckDef {
    pub name: Option<Ident>,
    pub expr: ast::Expr,
}

/// `'key' = 'value'` of `WITH`.
pub(crate) struct OptionDef {
    pub key: String,
    pub value: String,
    pub at: Location,
}

/// Parses a job file.
pub(crate) fn parse_job(text: &str) -> Result<JobAst, SqlError> {
    let dialect = JobDialect::new();
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| syntax_error(text, e, None))?;
    let mut tables: Vec<TableDef> = Vec::new();
    let mut query: Option<(Box<ast::Query>, Location)> = None;
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token_ref().clone();
        if start.token == Token::EOF {
            break;
        }
        if parser.parse_keyword(Keyword::CREATE) {
            if !parser.parse_keyword(Keyword::TABLE) {
                let next = parser.peek_token_ref();
                return Err(error_at(
                    text,
                    next.span.start,
                    format!(
                        "a job file holds its CREATE TABLEs and one SELECT; CREATE {} is not supported",
                        next.token
                    ),
                ));
            }
            let def = parse_create_table(&mut parser).map_err(|e| syntax_error(text, e, Some(&parser)))?;
            if tables.len() == 2 {
                return Err(error_at(
                    text,
                    def.at,
                    "a job file holds at most two CREATE TABLEs (the stream and one versioned table it joins); remove this one",
                ));
            }
            tables.push(def);
        } else {
            let statement = parser
                .parse_statement()
                .map_err(|e| syntax_error(text, e, Some(&parser)))?;
            let ast::Statement::Query(q) = statement else {
                return Err(error_at(
                    text,
                    start.span.start,
                    "a job file holds its CREATE TABLEs and one SELECT",
                ));
            };
            if query.is_some() {
                return Err(error_at(
                    text,
                    start.span.start,
                    "a job file holds exactly one SELECT; remove this second one (one job computes one query)",
                ));
            }
            query = Some((q, start.span.start));
        }
        let next = parser.peek_token_ref();
        if !matches!(next.token, Token::SemiColon | Token::EOF) {
            return Err(error_at(
                text,
                next.span.start,
                format!(
                    "syntax error: expected `;` or the end of the file after the statement, found `{}`",
                    next.token
                ),
            ));
        }
    }
    if tables.is_empty() {
        return Err(SqlError::general(
            "the job file has no CREATE TABLE; declare the source first: CREATE TABLE name (columns..., WATERMARK FOR ...) WITH (...)",
        ));
    }
    let (query, query_at) = query.ok_or_else(|| {
        SqlError::general("the job file has no SELECT; add the query: SELECT ... FROM TABLE(TUMBLE(...)) GROUP BY ...")
    })?;
    Ok(JobAst {
        tables,
        query,
        query_at,
    })
}

/// Everything after `CREATE TABLE`.
fn parse_create_table(p: &mut Parser) -> Result<TableDef, ParserError> {
    let _ = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let at = p.peek_token_ref().span.start;
    let name = p.parse_object_name(false)?;
    p.expect_token(&Token::LParen)?;
    let mut elements = Vec::new();
    loop {
        elements.push(parse_element(p)?);
        if p.consume_token(&Token::Comma) {
            continue;
        }
        p.expect_token(&Token::RParen)?;
        break;
    }
    let mut options = Vec::new();
    if p.parse_keyword(Keyword::WITH) {
        p.expect_token(&Token::LParen)?;
        loop {
            let at = p.peek_token_ref().span.start;
            let key = quoted(p, "an option name in single quotes, such as 'connector'")?;
            p.expect_token(&Token::Eq)?;
            let value = quoted(p, "an option value in single quotes, such as 'kafka'")?;
            options.push(OptionDef { key, value, at });
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen)?;
            break;
        }
    }
    Ok(TableDef {
        name,
        elements,
        options,
        at,
    })
}

fn quoted(p: &mut Parser, what: &str) -> Result<String, ParserError> {
    let token = p.next_token();
    match token.token {
        Token::SingleQuotedString(s) => Ok(s),
        _ => p.expected(what, token),
    }
}

fn word_is(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn not_supported<T>(at: Location, message: &str) -> Result<T, ParserError> {
    Err(ParserError::ParserError(format!("{message}{at}")))
}

fn parse_element(p: &mut Parser) -> Result<Element, ParserError> {
    let first = p.peek_token_ref().clone();
    if word_is(&first, "WATERMARK") {
        p.advance_token();
        p.expect_keyword(Keyword::FOR)?;
        let column = p.parse_identifier()?;
        p.expect_keyword(Keyword::AS)?;
        let expr = p.parse_expr()?;
        return Ok(Element::Watermark {
            column,
            expr,
            at: first.span.start,
        });
    }
    if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
        p.expect_token(&Token::LParen)?;
        let mut columns = vec![p.parse_identifier()?];
        while p.consume_token(&Token::Comma) {
            columns.push(p.parse_identifier()?);
        }
        p.expect_token(&Token::RParen)?;
        not_enforced(p, first.span.start)?;
        return Ok(Element::PrimaryKey {
            columns,
            at: first.span.start,
        });
    }
    for word in ["CONSTRAINT", "CHECK", "UNIQUE", "FOREIGN", "PERIOD", "LIKE"] {
        if word_is(&first, word) {
            return not_supported(
                first.span.start,
                "this table constraint is not supported (a table takes PRIMARY KEY (column) NOT ENFORCED); write NOT NULL or [CONSTRAINT name] CHECK (...) after the column it constrains",
            );
        }
    }
    let name = p.parse_identifier()?;
    if p.parse_keyword(Keyword::AS) {
        let expr = p.parse_expr()?;
        return Ok(Element::Computed { name, expr });
    }
    let ty_at = p.peek_token_ref().span.start;
    let ty = p.parse_data_type()?;
    let mut not_null = false;
    let mut checks = Vec::new();
    let mut primary: Option<Location> = None;
    loop {
        let next = p.peek_token_ref().clone();
        if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            not_null = true;
        } else if p.parse_keyword(Keyword::NULL) {
        } else if p.parse_keyword(Keyword::CONSTRAINT) {
            let constraint = p.parse_identifier()?;
            p.expect_keyword(Keyword::CHECK)?;
            checks.push(CheckDef {
                name: Some(constraint),
                expr: parenthesized(p)?,
            });
        } else if p.parse_keyword(Keyword::CHECK) {
            checks.push(CheckDef {
                name: None,
                expr: parenthesized(p)?,
            });
        } else if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            not_enforced(p, next.span.start)?;
            primary = Some(next.span.start);
        } else if word_is(&next, "UNIQUE") {
            return not_supported(
                next.span.start,
                "UNIQUE is not supported: a stream has no key constraint; remove it (GROUP BY decides the keys)",
            );
        } else if word_is(&next, "METADATA") {
            return not_supported(
                next.span.start,
                "METADATA columns are not supported; declare fields of the JSON record only",
            );
        } else {
            break;
        }
    }
    Ok(Element::Column {
        name,
        ty,
        ty_at,
        not_null,
        checks,
        primary,
    })
}

/// `NOT ENFORCED` after a primary key: the job does not check uniqueness, a later row replaces an earlier one.
fn not_enforced(p: &mut Parser, at: Location) -> Result<(), ParserError> {
    if p.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]) {
        Ok(())
    } else {
        not_supported(
            at,
            "write PRIMARY KEY (...) NOT ENFORCED: the key is not checked, a later row of a key replaces the earlier one",
        )
    }
}

fn parenthesized(p: &mut Parser) -> Result<ast::Expr, ParserError> {
    p.expect_token(&Token::LParen)?;
    let expr = p.parse_expr()?;
    p.expect_token(&Token::RParen)?;
    Ok(expr)
}

/// A planner error at a source location.
pub(crate) fn error_at(text: &str, at: Location, message: impl Into<String>) -> SqlError {
    SqlError::at(text, at.line as usize, at.column as usize, message)
}

/// A parser error as a [`SqlError`]: its position from the message (`... at Line: L, Column: C`), else the
/// token the parser stopped at, else the end of the text.
fn syntax_error(text: &str, e: ParserError, parser: Option<&Parser>) -> SqlError {
    let raw = match e {
        ParserError::ParserError(s) | ParserError::TokenizerError(s) => s,
        ParserError::RecursionLimitExceeded => {
            "the text nests too deeply (more than 50 levels of parentheses or calls); simplify it".to_string()
        }
    };
    let (message, mut at) = split_location(&raw);
    if at.is_none() {
        at = parser.map(|p| p.peek_token_ref().span.start).filter(|l| l.line > 0);
    }
    let at = at.unwrap_or_else(|| end_of(text));
    let message = if message.starts_with("Expected") {
        format!("syntax error: {message}")
    } else {
        message.to_string()
    };
    error_at(text, at, message)
}

/// Splits `... at Line: L, Column: C` off a parser message.
fn split_location(raw: &str) -> (&str, Option<Location>) {
    let Some(i) = raw.rfind(" at Line: ") else {
        return (raw, None);
    };
    let tail = &raw[i + " at Line: ".len()..];
    let mut parts = tail.splitn(2, ", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse::<u64>().ok());
    let column = parts.next().and_then(|c| c.trim().parse::<u64>().ok());
    match (line, column) {
        (Some(line), Some(column)) => (&raw[..i], Some(Location { line, column })),
        _ => (raw, None),
    }
}

/// Just past the last character that is not whitespace (where an error "at the end of the file" points).
fn end_of(text: &str) -> Location {
    let trimmed = text.trim_end();
    let line = trimmed.lines().count().max(1);
    let last = trimmed.lines().last().unwrap_or("");
    Location {
        line: line as u64,
        column: last.chars().count() as u64 + 1,
    }
}

/// Where an expression starts, found without walking the whole tree (a long chain of operators is as deep as it
/// is long, and `Spanned::span` visits all of it).
pub(crate) fn start_of(expr: &ast::Expr) -> Location {
    let mut e = expr;
    for _ in 0..10_000 {
        e = match e {
            ast::Expr::BinaryOp { left, .. } => left,
            ast::Expr::IsNull(x)
            | ast::Expr::IsNotNull(x)
            | ast::Expr::IsTrue(x)
            | ast::Expr::IsFalse(x)
            | ast::Expr::IsNotTrue(x)
            | ast::Expr::IsNotFalse(x) => x,
            ast::Expr::In { expr, .. } | ast::Expr::Between { expr, .. } => expr,
            ast::Expr::Identifier(id) => return id.span.start,
            ast::Expr::CompoundIdentifier(ids) => return ids.first().map_or(Location::of(0, 0), |i| i.span.start),
            ast::Expr::Value(v) => return v.span.start,
            ast::Expr::Function(f) => return f.name.0.first().map_or(Location::of(0, 0), |p| p.span().start),
            ast::Expr::Case { case_token, .. } => return case_token.0.span.start,
            ast::Expr::Prefixed { prefix, .. } => return prefix.span.start,
            ast::Expr::Nested(x) => x,
            ast::Expr::UnaryOp { expr, .. } => expr,
            ast::Expr::Cast { expr, .. } => expr,
            ast::Expr::Interval(i) => &i.value,
            ast::Expr::TypedString(t) => return t.value.span.start,
            _ => return Location::of(0, 0),
        };
    }
    Location::of(0, 0)
}

/// Function names written in any case that the canonical text spells in upper case.
const FUNCTION_WORDS: [&str; 27] = [
    "TUMBLE",
    "HOP",
    "SESSION",
    "DESCRIPTOR",
    "COALESCE",
    "ABS",
    "ROUND",
    "LOWER",
    "UPPER",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "TO_TIMESTAMP_LTZ",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STDDEV",
    "VAR_POP",
    "VAR_SAMP",
    "VARIANCE",
    "FIRST_VALUE",
    "LAST_VALUE",
    "WATERMARK",
    "STRING",
];

/// The job's canonical text (see [`crate::plan::Job::normalized`]): its tokens one space apart, comments and
/// layout dropped, keywords and built-in function names in upper case, every other word as written. A word
/// that names something of the job (`identifiers`: columns, the table, output names, constraints) keeps its
/// case even when it is also a keyword, so two jobs that differ in an identifier's case never share a text.
pub(crate) fn normalize(text: &str, identifiers: &[&str]) -> String {
    let dialect = JobDialect::new();
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize() else {
        return String::new();
    };
    let mut out = String::with_capacity(text.len());
    for token in tokens {
        if matches!(token, Token::Whitespace(_) | Token::EOF) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        match &token {
            Token::Word(w)
                if w.quote_style.is_none()
                    && !identifiers.contains(&w.value.as_str())
                    && (w.keyword != Keyword::NoKeyword
                        || FUNCTION_WORDS.iter().any(|f| f.eq_ignore_ascii_case(&w.value))) =>
            {
                out.push_str(&w.value.to_ascii_uppercase())
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

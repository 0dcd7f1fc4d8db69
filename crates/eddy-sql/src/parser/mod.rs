//! Hand-written recursive-descent parser. This module holds the token cursor and the
//! statement/SELECT/FROM grammar; `expr` holds expressions (precedence climbing).

mod expr;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Tok, Token, tokenize};
use crate::span::Span;

/// Words that end an expression or clause, so they can never be a bare alias or a column.
const RESERVED: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "INTO",
    "AS",
    "ON",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "OUTER",
    "CROSS",
    "APPLY",
    "UNION",
    "ALL",
    "WITH",
    "TIMESTAMP",
    "OVER",
    "PARTITION",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "IN",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "TRY_CAST",
    "DISTINCT",
    "CREATE",
    "TABLE",
    "ORDER",
    "LIMIT",
    "ASC",
    "DESC",
];

/// Parses a whole job.
pub fn parse(text: &str) -> Result<Script, Diagnostic> {
    let mut p = Parser {
        text,
        tokens: tokenize(text)?,
        pos: 0,
        depth: 0,
    };
    p.script()
}

/// Token cursor over one query text.
pub(crate) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Current expression nesting, bounded so that hostile input cannot overflow the stack.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + n).min(last)].tok
    }

    fn span(&self) -> Span {
        self.tokens[self.pos.min(self.tokens.len() - 1)].span
    }

    /// End of the last consumed token, to close spans.
    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.tokens[self.pos - 1].span.end
        }
    }

    fn since(&self, start: Span) -> Span {
        Span::new(start.start, self.prev_end().max(start.end))
    }

    fn advance(&mut self) -> Token {
        let t = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.advance();
        }
        hit
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.advance();
        }
        hit
    }

    /// Describes the current token for "found ..." in messages.
    fn found(&self) -> String {
        match self.peek() {
            Tok::Eof => "end of input".to_string(),
            _ => {
                let s = self.span();
                format!("'{}'", &self.text[s.start..s.end])
            }
        }
    }

    /// `expected <what>, found <current token>` at the current token.
    pub(crate) fn expected(&self, what: &str) -> Diagnostic {
        Diagnostic::new(
            format!("expected {what}, found {}", self.found()),
            self.span(),
            self.text,
        )
    }

    fn expect_kw(&mut self, kw: &str) -> Result<Span, Diagnostic> {
        if self.is_kw(kw) {
            Ok(self.advance().span)
        } else {
            Err(self.expected(kw))
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<Span, Diagnostic> {
        if self.is_punct(p) {
            Ok(self.advance().span)
        } else {
            Err(self.expected(&format!("'{p}'")))
        }
    }

    fn is_reserved(word: &str) -> bool {
        RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
    }

    /// True if the current token can start a name (a non-reserved word or `[name]`).
    fn at_ident(&self) -> bool {
        match self.peek() {
            Tok::Word(w) => !Self::is_reserved(w),
            Tok::Quoted(_) => true,
            _ => false,
        }
    }

    /// A name; `what` says which one for the error message.
    fn ident(&mut self, what: &str) -> Result<Ident, Diagnostic> {
        match self.peek() {
            _ if self.at_ident() => Ok(self.any_ident()),
            Tok::Word(w) => {
                let help = format!("'{w}' is a reserved word; write [{w}] to use it as a name");
                Err(self.expected(what).with_help(help))
            }
            _ => Err(self.expected(what)),
        }
    }

    /// After AS a name must follow, so only words that start a clause are refused there
    /// (`AS Timestamp` and `AS [from]` work, `AS from` does not).
    fn alias_after_as(&mut self) -> Result<Ident, Diagnostic> {
        const CLAUSE_WORDS: [&str; 9] = [
            "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "INTO", "UNION", "JOIN", "ON",
        ];
        match self.peek() {
            Tok::Word(w) if !CLAUSE_WORDS.iter().any(|c| c.eq_ignore_ascii_case(w)) => {
                Ok(self.any_ident())
            }
            _ => self.ident("an alias after AS"),
        }
    }

    /// Consumes a word or bracketed name, reserved or not (after a dot, anything goes).
    fn any_ident(&mut self) -> Ident {
        let t = self.advance();
        let name = match t.tok {
            Tok::Word(w) | Tok::Quoted(w) => w,
            _ => String::new(),
        };
        Ident { name, span: t.span }
    }

    fn script(&mut self) -> Result<Script, Diagnostic> {
        let mut statements = Vec::new();
        loop {
            while self.eat_punct(";") {}
            if matches!(self.peek(), Tok::Eof) {
                break;
            }
            statements.push(self.statement()?);
        }
        if statements.is_empty() {
            return Err(self
                .expected("SELECT, WITH or CREATE TABLE")
                .with_help("a job needs at least one SELECT"));
        }
        Ok(Script { statements })
    }

    fn statement(&mut self) -> Result<Statement, Diagnostic> {
        if self.is_kw("SELECT") {
            return Ok(Statement::Query(Box::new(self.query()?)));
        }
        if self.eat_kw("WITH") {
            let mut steps = Vec::new();
            loop {
                let name = self.ident("a step name")?;
                self.expect_kw("AS")?;
                self.expect_punct("(")?;
                let query = self.query()?;
                self.expect_punct(")")?;
                steps.push(Step { name, query });
                if !self.eat_punct(",") {
                    break;
                }
            }
            if !self.is_kw("SELECT") {
                return Err(self.expected("',' or SELECT after a WITH step"));
            }
            let body = Box::new(self.query()?);
            return Ok(Statement::With { steps, body });
        }
        if self.is_kw("CREATE") {
            return self.create_table();
        }
        Err(self.expected("SELECT, WITH or CREATE TABLE"))
    }

    fn create_table(&mut self) -> Result<Statement, Diagnostic> {
        let start = self.advance().span;
        self.expect_kw("TABLE")?;
        let name = self.ident("a table name")?;
        self.expect_punct("(")?;
        let mut columns = Vec::new();
        loop {
            let col = self.ident("a column name")?;
            let ty = self.data_type()?;
            columns.push((col, ty));
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(")")?;
        Ok(Statement::CreateTable {
            name,
            columns,
            span: self.since(start),
        })
    }

    /// `bigint`, `float`, `nvarchar(max)`, `datetime`, `bit`, `record`, `array`.
    pub(crate) fn data_type(&mut self) -> Result<DataType, Diagnostic> {
        let what = "a type (bigint, float, nvarchar(max), datetime, bit, record, array)";
        let Tok::Word(w) = self.peek() else {
            return Err(self.expected(what));
        };
        let ty = match w.to_ascii_lowercase().as_str() {
            "bigint" | "int" => DataType::BigInt,
            "float" | "real" => DataType::Float,
            "nvarchar" | "varchar" => DataType::NVarChar,
            "datetime" => DataType::DateTime,
            "bit" => DataType::Bit,
            "record" => DataType::Record,
            "array" => DataType::Array,
            _ => return Err(self.expected(what)),
        };
        self.advance();
        if ty == DataType::NVarChar && self.eat_punct("(") {
            if self.is_kw("max") || matches!(self.peek(), Tok::Int(_)) {
                self.advance();
            } else {
                return Err(self.expected("MAX or a length"));
            }
            self.expect_punct(")")?;
        }
        Ok(ty)
    }

    /// SELECT [UNION SELECT ...]: left-associative.
    fn query(&mut self) -> Result<Query, Diagnostic> {
        let mut q = Query::Select(Box::new(self.select()?));
        while self.is_kw("UNION") {
            let span = self.advance().span;
            self.eat_kw("ALL");
            let right = Query::Select(Box::new(self.select()?));
            q = Query::Union {
                left: Box::new(q),
                right: Box::new(right),
                span,
            };
        }
        Ok(q)
    }

    fn select(&mut self) -> Result<Select, Diagnostic> {
        let start = self.expect_kw("SELECT")?;
        let distinct = self.eat_kw("DISTINCT");
        if !distinct {
            self.eat_kw("ALL");
        }
        let mut items = vec![self.select_item()?];
        while self.eat_punct(",") {
            items.push(self.select_item()?);
        }
        let into = if self.eat_kw("INTO") {
            Some(self.ident("an output name after INTO")?)
        } else {
            None
        };
        if !self.is_kw("FROM") {
            let what = if into.is_some() {
                "FROM"
            } else {
                "',', INTO or FROM"
            };
            return Err(self.expected(what));
        }
        self.advance();
        let from = self.sources()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            group_by.push(self.expr()?);
            while self.eat_punct(",") {
                group_by.push(self.expr()?);
            }
        }
        let having = if self.eat_kw("HAVING") {
            Some(self.expr()?)
        } else {
            None
        };
        self.check_clause_end()?;
        Ok(Select {
            distinct,
            items,
            into,
            from,
            filter,
            group_by,
            having,
            span: self.since(start),
        })
    }

    /// After a SELECT only `;`, `)`, UNION, a new statement or the end may follow.
    fn check_clause_end(&self) -> Result<(), Diagnostic> {
        let ok = matches!(self.peek(), Tok::Eof | Tok::Punct(";") | Tok::Punct(")"))
            || ["UNION", "SELECT", "WITH", "CREATE"]
                .iter()
                .any(|k| self.is_kw(k));
        if ok {
            return Ok(());
        }
        let d = self.expected("WHERE, GROUP BY, HAVING, UNION or the end of the statement");
        Err(match self.peek() {
            Tok::Word(w) if w.eq_ignore_ascii_case("ORDER") => {
                d.with_help("ORDER BY is not supported on streams")
            }
            _ => d,
        })
    }

    fn select_item(&mut self) -> Result<SelectItem, Diagnostic> {
        if self.is_punct("*") {
            return Ok(SelectItem::Wildcard(self.advance().span));
        }
        // `a.b.*`: scan ahead for a dotted path ending in `.*`.
        let mut n = 0;
        while matches!(self.peek_at(n), Tok::Word(_) | Tok::Quoted(_))
            && matches!(self.peek_at(n + 1), Tok::Punct("."))
        {
            n += 2;
        }
        if n > 0 && matches!(self.peek_at(n), Tok::Punct("*")) && self.at_ident() {
            let mut path = Vec::new();
            while !self.is_punct("*") {
                path.push(self.any_ident());
                self.advance(); // the dot
            }
            self.advance(); // the star
            return Ok(SelectItem::QualifiedWildcard(path));
        }
        // `alias = expr`
        if self.at_ident() && matches!(self.peek_at(1), Tok::Punct("=")) {
            let alias = self.any_ident();
            self.advance();
            let expr = self.expr()?;
            if self.is_kw("AS") {
                // `a = b AS x` reads as `alias = expr` followed by a second name.
                return Err(self.expected("',', INTO or FROM").with_help(format!(
                    "'{} = ...' already names this column; to project a comparison write ({} = ...) AS name",
                    alias.name, alias.name
                )));
            }
            return Ok(SelectItem::Expr {
                expr,
                alias: Some(alias),
            });
        }
        let expr = self.expr()?;
        let alias = if self.eat_kw("AS") {
            Some(self.alias_after_as()?)
        } else if self.at_ident() {
            Some(self.any_ident())
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    fn sources(&mut self) -> Result<FromClause, Diagnostic> {
        let source = self.source()?;
        let mut joins = Vec::new();
        loop {
            let start = self.span();
            let kind = if self.eat_kw("JOIN") {
                JoinKind::Inner
            } else if self.eat_kw("INNER") {
                self.expect_kw("JOIN")?;
                JoinKind::Inner
            } else if self.eat_kw("LEFT") {
                self.eat_kw("OUTER");
                self.expect_kw("JOIN")?;
                JoinKind::LeftOuter
            } else if self.eat_kw("CROSS") {
                self.expect_kw("APPLY")?;
                JoinKind::CrossApply
            } else if self.eat_kw("OUTER") {
                self.expect_kw("APPLY")?;
                JoinKind::OuterApply
            } else if self.is_kw("RIGHT") || self.is_kw("FULL") {
                return Err(Diagnostic::new(
                    "only INNER and LEFT OUTER joins are supported",
                    start,
                    self.text,
                ));
            } else {
                break;
            };
            let span = self.since(start);
            if matches!(kind, JoinKind::CrossApply | JoinKind::OuterApply) {
                let call = self.expr()?;
                if !matches!(call, Expr::Function(_)) {
                    return Err(Diagnostic::new(
                        "expected a function such as GetArrayElements(...) after APPLY",
                        call.span(),
                        self.text,
                    ));
                }
                self.eat_kw("AS");
                let alias = self.ident("an alias for the APPLY result")?;
                joins.push(Join {
                    kind,
                    right: JoinTarget::Function { call, alias },
                    on: None,
                    span,
                });
            } else {
                let right = self.source()?;
                self.expect_kw("ON")?;
                let on = Some(self.expr()?);
                joins.push(Join {
                    kind,
                    right: JoinTarget::Source(right),
                    on,
                    span,
                });
            }
        }
        Ok(FromClause { source, joins })
    }

    /// `name [[AS] alias] [TIMESTAMP BY expr [OVER k, ...]] [PARTITION BY expr]`, the two
    /// BY clauses in either order.
    fn source(&mut self) -> Result<Source, Diagnostic> {
        let name = self.ident("an input or step name")?;
        let alias = if self.eat_kw("AS") {
            Some(self.alias_after_as()?)
        } else if self.at_ident() {
            Some(self.any_ident())
        } else {
            None
        };
        let mut source = Source {
            name,
            alias,
            partition_by: None,
            timestamp_by: None,
        };
        loop {
            if source.timestamp_by.is_none() && self.is_kw("TIMESTAMP") {
                self.advance();
                self.expect_kw("BY")?;
                let expr = self.expr()?;
                let mut over = Vec::new();
                if self.eat_kw("OVER") {
                    over.push(self.expr()?);
                    while self.eat_punct(",") {
                        over.push(self.expr()?);
                    }
                }
                source.timestamp_by = Some(TimestampBy { expr, over });
            } else if source.partition_by.is_none() && self.is_kw("PARTITION") {
                self.advance();
                self.expect_kw("BY")?;
                source.partition_by = Some(self.expr()?);
            } else {
                break;
            }
        }
        Ok(source)
    }
}

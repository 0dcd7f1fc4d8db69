//! Expressions by precedence climbing. Levels, loosest first (T-SQL order):
//! OR(1) < AND(2) < NOT(3) < comparisons and IS/IN/BETWEEN/LIKE(4) < `+ - & | ^`(5)
//! < `* / %`(6) < unary `- + ~`(7).

use super::Parser;
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::Tok;

const PREC_NOT: u8 = 3;
const PREC_CMP: u8 = 4;
const PREC_ADD: u8 = 5;
const PREC_UNARY: u8 = 7;
/// Deepest expression nesting accepted; deeper input is an error, never a stack overflow.
const MAX_DEPTH: usize = 200;

impl Parser<'_> {
    /// A full expression.
    pub(crate) fn expr(&mut self) -> Result<Expr, Diagnostic> {
        self.expr_bp(1)
    }

    /// The binary operator at the cursor and its level.
    fn binary_op(&self) -> Option<(BinaryOp, u8)> {
        let op = match self.peek() {
            Tok::Word(w) if w.eq_ignore_ascii_case("OR") => (BinaryOp::Or, 1),
            Tok::Word(w) if w.eq_ignore_ascii_case("AND") => (BinaryOp::And, 2),
            Tok::Punct(p) => match *p {
                "=" => (BinaryOp::Eq, PREC_CMP),
                "<>" | "!=" => (BinaryOp::NotEq, PREC_CMP),
                "<" => (BinaryOp::Lt, PREC_CMP),
                "<=" => (BinaryOp::LtEq, PREC_CMP),
                ">" => (BinaryOp::Gt, PREC_CMP),
                ">=" => (BinaryOp::GtEq, PREC_CMP),
                "+" => (BinaryOp::Add, PREC_ADD),
                "-" => (BinaryOp::Sub, PREC_ADD),
                "&" => (BinaryOp::BitAnd, PREC_ADD),
                "|" => (BinaryOp::BitOr, PREC_ADD),
                "^" => (BinaryOp::BitXor, PREC_ADD),
                "*" => (BinaryOp::Mul, 6),
                "/" => (BinaryOp::Div, 6),
                "%" => (BinaryOp::Mod, 6),
                _ => return None,
            },
            _ => return None,
        };
        Some(op)
    }

    fn expr_bp(&mut self, min: u8) -> Result<Expr, Diagnostic> {
        if self.depth >= MAX_DEPTH {
            let help = format!("expressions may nest at most {MAX_DEPTH} levels deep");
            return Err(self
                .expected("a less deeply nested expression")
                .with_help(help));
        }
        self.depth += 1;
        let result = self.expr_loop(min);
        self.depth -= 1;
        result
    }

    fn expr_loop(&mut self, min: u8) -> Result<Expr, Diagnostic> {
        let mut lhs = self.prefix()?;
        loop {
            if let Some((op, prec)) = self.binary_op() {
                if prec < min {
                    break;
                }
                self.advance();
                let rhs = self.expr_bp(prec + 1)?;
                let span = lhs.span().to(rhs.span());
                lhs = Expr::Binary {
                    op,
                    left: Box::new(lhs),
                    right: Box::new(rhs),
                    span,
                };
            } else if min <= PREC_CMP && self.at_predicate() {
                lhs = self.predicate(lhs)?;
            } else {
                break;
            }
        }
        Ok(lhs)
    }

    fn at_predicate(&self) -> bool {
        let neg = usize::from(self.is_kw("NOT"));
        self.is_kw("IS") && neg == 0
            || ["IN", "BETWEEN", "LIKE"]
                .iter()
                .any(|k| self.is_kw_at(neg, k))
    }

    /// `IS [NOT] NULL`, `[NOT] IN (...)`, `[NOT] BETWEEN a AND b`, `[NOT] LIKE p`.
    fn predicate(&mut self, lhs: Expr) -> Result<Expr, Diagnostic> {
        let expr = Box::new(lhs);
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            let span = self.since(expr.span());
            return Ok(Expr::IsNull {
                expr,
                negated,
                span,
            });
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            self.expect_punct("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_punct(",") {
                list.push(self.expr()?);
            }
            self.expect_punct(")")?;
            let span = self.since(expr.span());
            Ok(Expr::InList {
                expr,
                list,
                negated,
                span,
            })
        } else if self.eat_kw("BETWEEN") {
            let low = Box::new(self.expr_bp(PREC_ADD)?);
            self.expect_kw("AND")?;
            let high = Box::new(self.expr_bp(PREC_ADD)?);
            let span = self.since(expr.span());
            Ok(Expr::Between {
                expr,
                low,
                high,
                negated,
                span,
            })
        } else {
            self.expect_kw("LIKE")?;
            let pattern = Box::new(self.expr_bp(PREC_ADD)?);
            let span = self.since(expr.span());
            Ok(Expr::Like {
                expr,
                pattern,
                negated,
                span,
            })
        }
    }

    fn prefix(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.span();
        let (op, prec) = if self.is_kw("NOT") {
            (UnaryOp::Not, PREC_NOT)
        } else {
            match self.peek() {
                Tok::Punct("-") => (UnaryOp::Neg, PREC_UNARY),
                Tok::Punct("+") => (UnaryOp::Plus, PREC_UNARY),
                Tok::Punct("~") => (UnaryOp::BitNot, PREC_UNARY),
                _ => return self.primary(),
            }
        };
        self.advance();
        // `-5` is a literal, so that `Offset(millisecond, -1)` needs no folding later.
        if op == UnaryOp::Neg {
            let lit = match self.peek() {
                Tok::Int(n) => Some(Literal::Integer(n.wrapping_neg())),
                Tok::Float(f) => Some(Literal::Float(-f)),
                _ => None,
            };
            if let Some(lit) = lit {
                self.advance();
                return Ok(Expr::Literal(lit, self.since(start)));
            }
        }
        let expr = Box::new(self.expr_bp(prec)?);
        Ok(Expr::Unary {
            op,
            expr,
            span: self.since(start),
        })
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.span();
        let lit = match self.peek() {
            Tok::Int(n) => Some(Literal::Integer(*n)),
            Tok::Float(f) => Some(Literal::Float(*f)),
            Tok::Str(s) => Some(Literal::String(s.clone())),
            Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Some(Literal::Null),
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Some(Literal::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Some(Literal::Bool(false)),
            _ => None,
        };
        if let Some(lit) = lit {
            self.advance();
            return Ok(Expr::Literal(lit, start));
        }
        if self.eat_punct("(") {
            let inner = self.expr()?;
            self.expect_punct(")")?;
            return Ok(Expr::Nested(Box::new(inner), self.since(start)));
        }
        if self.is_kw("CASE") {
            return self.case();
        }
        if self.is_kw("CAST") || self.is_kw("TRY_CAST") {
            let try_cast = self.is_kw("TRY_CAST");
            self.advance();
            self.expect_punct("(")?;
            let expr = Box::new(self.expr()?);
            self.expect_kw("AS")?;
            let target = self.data_type()?;
            self.expect_punct(")")?;
            return Ok(Expr::Cast {
                expr,
                target,
                try_cast,
                span: self.since(start),
            });
        }
        // LEFT and RIGHT are keywords in FROM but functions in expressions; `timestamp` is a
        // common field name and only a keyword in `TIMESTAMP BY`.
        let soft_keyword = (self.is_kw("LEFT") || self.is_kw("RIGHT"))
            && matches!(self.peek_at(1), Tok::Punct("("))
            || self.is_kw("TIMESTAMP") && !self.is_kw_at(1, "BY");
        if !self.at_ident() && !soft_keyword {
            return Err(self.expected("an expression"));
        }
        let mut path = vec![self.any_ident()];
        while self.is_punct(".") && matches!(self.peek_at(1), Tok::Word(_) | Tok::Quoted(_)) {
            self.advance();
            path.push(self.any_ident());
        }
        if self.is_punct("(") {
            return self.call(path);
        }
        Ok(Expr::Column(path, self.since(start)))
    }

    /// `name(args) [OVER (...)]`; the cursor is on `(`.
    fn call(&mut self, name: Vec<Ident>) -> Result<Expr, Diagnostic> {
        let start = name[0].span;
        self.advance();
        let (mut star, mut distinct, mut args) = (false, false, Vec::new());
        if self.eat_punct("*") {
            star = true;
        } else if !self.is_punct(")") {
            distinct = self.eat_kw("DISTINCT");
            args.push(self.expr()?);
            while self.eat_punct(",") {
                args.push(self.expr()?);
            }
        }
        if !self.is_punct(")") {
            let what = if args.is_empty() { "')'" } else { "',' or ')'" };
            return Err(self.expected(what));
        }
        self.advance();
        // `TIMESTAMP BY f(x) OVER key` has no parenthesis: that OVER belongs to the source.
        let over = if self.is_kw("OVER") && matches!(self.peek_at(1), Tok::Punct("(")) {
            Some(self.over_clause()?)
        } else {
            None
        };
        let span = self.since(start);
        let mut expr = Expr::Function(Box::new(FunctionCall {
            name,
            args,
            star,
            distinct,
            over,
            span,
        }));
        // `System.Window().Id`: fields of a call's record result.
        while self.is_punct(".") && matches!(self.peek_at(1), Tok::Word(_) | Tok::Quoted(_)) {
            self.advance();
            let field = self.any_ident();
            let span = self.since(start);
            expr = Expr::Member {
                expr: Box::new(expr),
                field,
                span,
            };
        }
        Ok(expr)
    }

    /// `OVER ([PARTITION BY ..] [ORDER BY ..] [LIMIT DURATION(..)] [WHEN ..])`.
    fn over_clause(&mut self) -> Result<OverClause, Diagnostic> {
        let start = self.advance().span;
        self.expect_punct("(")?;
        let mut over = OverClause {
            partition_by: Vec::new(),
            order_by: Vec::new(),
            limit_duration: None,
            when: None,
            span: start,
        };
        if self.eat_kw("PARTITION") {
            self.expect_kw("BY")?;
            over.partition_by = self.expr_list()?;
        }
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let e = self.expr()?;
                let desc = self.eat_kw("DESC");
                if !desc {
                    self.eat_kw("ASC");
                }
                over.order_by.push((e, desc));
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        if self.eat_kw("LIMIT") {
            if !self.is_kw("DURATION") {
                return Err(self.expected("DURATION after LIMIT"));
            }
            over.limit_duration = Some(self.primary()?);
        }
        if self.eat_kw("WHEN") {
            over.when = Some(self.expr()?);
        }
        if !self.is_punct(")") {
            return Err(self.expected("PARTITION BY, ORDER BY, LIMIT DURATION, WHEN or ')'"));
        }
        self.advance();
        over.span = self.since(start);
        Ok(over)
    }

    fn expr_list(&mut self) -> Result<Vec<Expr>, Diagnostic> {
        let mut list = vec![self.expr()?];
        while self.eat_punct(",") {
            list.push(self.expr()?);
        }
        Ok(list)
    }

    fn case(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.advance().span;
        let operand = if self.is_kw("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut branches = Vec::new();
        while self.eat_kw("WHEN") {
            let when = self.expr()?;
            self.expect_kw("THEN")?;
            branches.push((when, self.expr()?));
        }
        if branches.is_empty() {
            return Err(self.expected("WHEN"));
        }
        let else_result = if self.eat_kw("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        if !self.is_kw("END") {
            let what = if else_result.is_some() {
                "END"
            } else {
                "WHEN, ELSE or END"
            };
            return Err(self.expected(what));
        }
        self.advance();
        Ok(Expr::Case {
            operand,
            branches,
            else_result,
            span: self.since(start),
        })
    }
}

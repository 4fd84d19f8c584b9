//! Value expressions and conditions: columns, literals (always bound),
//! arithmetic, comparisons, LIKE, IN, BETWEEN, NULL tests, CAST and the
//! ADQL functions, each spelled for the backend.
//!
//! Types are tracked (integer, double, text, condition) because the two
//! backends disagree where SQL is loose: PostgreSQL has no `mod`, `round`
//! or `trunc` with a precision for doubles, SQLite's `log` is base 10 and
//! its `LIKE` ignores case. Mixing text and numbers in a comparison is
//! refused rather than left to each backend's coercions.

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, DuplicateTreatment, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, UnaryOperator, Value as Lit,
};

use super::scope::{ColRef, Scope, Sql};
use super::{AdqlError, FUNCTIONS};

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Float,
    Text,
    /// A condition (a comparison, AND, OR, …).
    Bool,
    /// The NULL literal.
    Null,
}

impl Ty {
    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Null)
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Int => "an integer",
            Ty::Float => "a number",
            Ty::Text => "text",
            Ty::Bool => "a condition",
            Ty::Null => "NULL",
        }
    }
}

/// A translated expression.
#[derive(Clone)]
pub(crate) struct Typed<'a> {
    pub sql: String,
    pub ty: Ty,
    /// The column, when the expression is just one.
    pub col: Option<ColRef<'a>>,
    /// The value, when the expression is a numeric constant.
    pub konst: Option<f64>,
    /// The value, when the expression is a string literal.
    pub text: Option<String>,
    /// Whether it contains an aggregate.
    pub aggregate: bool,
}

impl<'a> Typed<'a> {
    pub fn new(sql: String, ty: Ty) -> Self {
        Self {
            sql,
            ty,
            col: None,
            konst: None,
            text: None,
            aggregate: false,
        }
    }

    fn agg(mut self, a: bool) -> Self {
        self.aggregate |= a;
        self
    }
}

/// Translates expressions within one FROM scope.
pub(crate) struct Tr<'s, 'a> {
    pub scope: &'s Scope<'a>,
    pub sql: &'s mut Sql,
    /// Whether aggregates are allowed here (SELECT list, HAVING, ORDER BY).
    pub aggregates: bool,
}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, AdqlError> {
    Err(AdqlError::new(msg))
}

impl<'s, 'a> Tr<'s, 'a> {
    /// A value expression (anything but a condition).
    pub fn value(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let t = self.expr(e)?;
        if t.ty == Ty::Bool {
            return err(format!(
                "\"{e}\" is a condition, not a value: conditions belong in WHERE, ON or HAVING"
            ));
        }
        Ok(t)
    }

    /// A condition.
    pub fn condition(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let t = self.expr(e)?;
        if t.ty != Ty::Bool {
            return err(format!(
                "\"{e}\" is {}, not a condition: compare it with something (=, <, LIKE, IS NULL, …)",
                t.ty.name()
            ));
        }
        Ok(t)
    }

    fn numeric(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let t = self.value(e)?;
        if !t.ty.numeric() {
            return err(format!(
                "\"{e}\" is {}, but a number is needed here",
                t.ty.name()
            ));
        }
        Ok(t)
    }

    /// A numeric argument as a double on PostgreSQL (whose math functions
    /// on integers return NUMERIC, which the result reader cannot take).
    pub fn float_arg(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let t = self.numeric(e)?;
        Ok(self.as_float(t))
    }

    pub fn as_float(&self, mut t: Typed<'a>) -> Typed<'a> {
        if self.sql.pg() && t.ty != Ty::Float {
            t.sql = format!("CAST({} AS DOUBLE PRECISION)", t.sql);
        }
        t.ty = Ty::Float;
        t.col = None;
        t
    }

    fn literal(&mut self, v: &Lit, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        match v {
            Lit::Number(n, _) => {
                let is_int = n.bytes().all(|b| b.is_ascii_digit());
                if is_int && let Ok(i) = n.parse::<i64>() {
                    let mut t = Typed::new(self.sql.bind(i), Ty::Int);
                    t.konst = Some(i as f64);
                    return Ok(t);
                }
                let f: f64 = n
                    .parse()
                    .map_err(|_| AdqlError::new(format!("{n} is not a number")))?;
                let mut t = Typed::new(self.sql.num(f), Ty::Float);
                t.konst = Some(f);
                Ok(t)
            }
            Lit::SingleQuotedString(s) => {
                let mut t = Typed::new(self.sql.bind(s.clone()), Ty::Text);
                t.text = Some(s.clone());
                Ok(t)
            }
            Lit::Null => Ok(Typed::new("NULL".into(), Ty::Null)),
            _ => err(format!(
                "the literal {e} is not ADQL: write numbers as 12 or 1.5e3 and text in single quotes"
            )),
        }
    }

    /// Any expression, condition or value.
    pub fn expr(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        match e {
            Expr::Identifier(i) => self.column(std::slice::from_ref(i)),
            Expr::CompoundIdentifier(ids) => self.column(ids),
            Expr::Value(v) => self.literal(&v.value, e),
            Expr::Nested(inner) => {
                let mut t = self.expr(inner)?;
                t.sql = format!("({})", t.sql);
                t.col = None;
                Ok(t)
            }
            Expr::UnaryOp { op, expr } => self.unary(*op, expr, e),
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right, e),
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let t = self.value(x)?;
                let not = if matches!(e, Expr::IsNotNull(_)) {
                    " NOT"
                } else {
                    ""
                };
                Ok(Typed::new(format!("({} IS{not} NULL)", t.sql), Ty::Bool).agg(t.aggregate))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, lo, hi) = (self.value(expr)?, self.value(low)?, self.value(high)?);
                comparable(&x, &lo, e)?;
                comparable(&x, &hi, e)?;
                let not = if *negated { " NOT" } else { "" };
                let a = x.aggregate || lo.aggregate || hi.aggregate;
                Ok(Typed::new(
                    format!("({}{not} BETWEEN {} AND {})", x.sql, lo.sql, hi.sql),
                    Ty::Bool,
                )
                .agg(a))
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, false),
            Expr::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, true),
            Expr::In {
                expr,
                target: sqlparser::ast::InTarget::List(list),
                negated,
                ..
            } => {
                let x = self.value(expr)?;
                let mut items = Vec::with_capacity(list.len());
                let mut a = x.aggregate;
                for item in list {
                    let t = self.value(item)?;
                    comparable(&x, &t, e)?;
                    a |= t.aggregate;
                    items.push(t.sql);
                }
                let not = if *negated { " NOT" } else { "" };
                Ok(Typed::new(
                    format!("({}{not} IN ({}))", x.sql, items.join(", ")),
                    Ty::Bool,
                )
                .agg(a))
            }
            Expr::In { .. } | Expr::Subquery(_) | Expr::Exists { .. } => {
                err("subqueries are not supported; use a JOIN, or IN with a list of values")
            }
            Expr::Function(f) => self.function(f, e),
            Expr::Ceil { expr, field } | Expr::Floor { expr, field } => {
                if !matches!(
                    field,
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime
                    )
                ) {
                    return err(format!("\"{e}\": CEILING and FLOOR take one number"));
                }
                let x = self.float_arg(expr)?;
                let name = if matches!(e, Expr::Ceil { .. }) {
                    "CEIL"
                } else {
                    "FLOOR"
                };
                Ok(Typed::new(format!("{name}({})", x.sql), Ty::Float).agg(x.aggregate))
            }
            Expr::Cast {
                kind: CastKind::Cast,
                expr,
                data_type,
                format: None,
            } => self.cast(expr, data_type),
            _ => err(format!(
                "\"{}\" is not supported in this ADQL service; allowed: columns, literals, + - * / ||, comparisons, AND/OR/NOT, BETWEEN, LIKE, ILIKE, IN (list), IS NULL, CAST and the functions {}",
                crate::params::shown(&e.to_string()),
                FUNCTIONS.join(", ")
            )),
        }
    }

    fn column(&mut self, ids: &[sqlparser::ast::Ident]) -> Result<Typed<'a>, AdqlError> {
        let c = self.scope.column(ids)?;
        let ty = match c.column.kind {
            super::ColumnKind::Int | super::ColumnKind::Bool => Ty::Int,
            super::ColumnKind::Float => Ty::Float,
            super::ColumnKind::Text => Ty::Text,
        };
        let mut t = Typed::new(c.sql.clone(), ty);
        t.col = Some(c);
        Ok(t)
    }

    fn unary(&mut self, op: UnaryOperator, x: &Expr, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        match op {
            UnaryOperator::Not => {
                let c = self.condition(x)?;
                Ok(Typed::new(format!("(NOT {})", c.sql), Ty::Bool).agg(c.aggregate))
            }
            UnaryOperator::Minus | UnaryOperator::Plus => {
                let mut t = self.numeric(x)?;
                if op == UnaryOperator::Minus {
                    t.sql = format!("(-{})", t.sql);
                    t.konst = t.konst.map(|k| -k);
                }
                t.col = None;
                Ok(t)
            }
            _ => err(format!(
                "the operator {op} in \"{e}\" is not ADQL; allowed: -, +, NOT"
            )),
        }
    }

    fn binary(
        &mut self,
        left: &Expr,
        op: &BinaryOperator,
        right: &Expr,
        e: &Expr,
    ) -> Result<Typed<'a>, AdqlError> {
        use BinaryOperator as B;
        match op {
            B::And | B::Or => {
                let (l, r) = (self.condition(left)?, self.condition(right)?);
                let w = if *op == B::And { "AND" } else { "OR" };
                Ok(Typed::new(format!("({} {w} {})", l.sql, r.sql), Ty::Bool)
                    .agg(l.aggregate || r.aggregate))
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                if let Some(t) = super::geometry::predicate(self, left, op, right)? {
                    return Ok(t);
                }
                let (l, r) = (self.value(left)?, self.value(right)?);
                comparable(&l, &r, e)?;
                let w = match op {
                    B::Eq => "=",
                    B::NotEq => "<>",
                    B::Lt => "<",
                    B::LtEq => "<=",
                    B::Gt => ">",
                    _ => ">=",
                };
                Ok(Typed::new(format!("({} {w} {})", l.sql, r.sql), Ty::Bool)
                    .agg(l.aggregate || r.aggregate))
            }
            B::Plus | B::Minus | B::Multiply | B::Divide => {
                let (l, r) = (self.numeric(left)?, self.numeric(right)?);
                let ty = if l.ty == Ty::Int && r.ty == Ty::Int {
                    Ty::Int
                } else {
                    Ty::Float
                };
                let w = match op {
                    B::Plus => "+",
                    B::Minus => "-",
                    B::Multiply => "*",
                    _ => "/",
                };
                Ok(Typed::new(format!("({} {w} {})", l.sql, r.sql), ty)
                    .agg(l.aggregate || r.aggregate))
            }
            B::StringConcat => {
                let (l, r) = (self.value(left)?, self.value(right)?);
                for t in [&l, &r] {
                    if !matches!(t.ty, Ty::Text | Ty::Null) {
                        return err(format!(
                            "|| joins text, but one side of \"{e}\" is {}; use CAST(x AS VARCHAR) first",
                            t.ty.name()
                        ));
                    }
                }
                Ok(Typed::new(format!("({} || {})", l.sql, r.sql), Ty::Text)
                    .agg(l.aggregate || r.aggregate))
            }
            _ => err(format!(
                "the operator {op} is not ADQL; allowed: + - * / ||, = <> != < <= > >=, AND, OR"
            )),
        }
    }

    fn like(
        &mut self,
        x: &Expr,
        pattern: &Expr,
        negated: bool,
        insensitive: bool,
    ) -> Result<Typed<'a>, AdqlError> {
        let v = self.value(x)?;
        if !matches!(v.ty, Ty::Text | Ty::Null) {
            return err(format!(
                "LIKE compares text, but \"{x}\" is {}",
                v.ty.name()
            ));
        }
        let not = if negated { " NOT" } else { "" };
        let sql = if self.sql.pg() {
            let p = self.value(pattern)?;
            let w = if insensitive { "ILIKE" } else { "LIKE" };
            format!("({}{not} {w} {})", v.sql, p.sql)
        } else if insensitive {
            let p = self.value(pattern)?;
            format!("({}{not} LIKE {})", v.sql, p.sql)
        } else if let Expr::Value(lit) = pattern
            && let Lit::SingleQuotedString(s) = &lit.value
        {
            // SQLite's LIKE ignores case; ADQL's does not. GLOB is exact,
            // so a constant pattern is rewritten into one.
            let p = self.sql.bind(like_to_glob(s));
            format!("({}{not} GLOB {p})", v.sql)
        } else {
            return err(
                "on this server LIKE needs a constant pattern ('abc%'); use ILIKE to compare with a column",
            );
        };
        Ok(Typed::new(sql, Ty::Bool).agg(v.aggregate))
    }

    fn cast(&mut self, x: &Expr, to: &SqlType) -> Result<Typed<'a>, AdqlError> {
        let v = self.value(x)?;
        let pg = self.sql.pg();
        let (ty, name) = match to {
            SqlType::SmallInt(_) | SqlType::Int(_) | SqlType::Integer(_) | SqlType::BigInt(_) => {
                (Ty::Int, if pg { "BIGINT" } else { "INTEGER" })
            }
            SqlType::Real | SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float(_) => {
                (Ty::Float, if pg { "DOUBLE PRECISION" } else { "REAL" })
            }
            SqlType::Char(_) | SqlType::Varchar(_) | SqlType::Text => (Ty::Text, "TEXT"),
            _ => {
                return err(format!(
                    "CAST to {to} is not supported; allowed: SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR, VARCHAR"
                ));
            }
        };
        Ok(Typed::new(format!("CAST({} AS {name})", v.sql), ty).agg(v.aggregate))
    }

    /// The plain arguments of a function call.
    pub fn args<'f>(&self, f: &'f Function) -> Result<(Vec<&'f Expr>, bool, bool), AdqlError> {
        let name = f.name.to_string().to_ascii_uppercase();
        if f.over.is_some()
            || f.filter.is_some()
            || !f.within_group.is_empty()
            || f.null_treatment.is_some()
        {
            return err(format!(
                "{name}: window functions, FILTER and WITHIN GROUP are not ADQL"
            ));
        }
        if !matches!(f.parameters, FunctionArguments::None) {
            return err(format!("{name}: unexpected parameter list"));
        }
        match &f.args {
            FunctionArguments::None => Ok((vec![], false, false)),
            FunctionArguments::Subquery(_) => err("subqueries are not supported"),
            FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return err(format!("{name}: only plain arguments are allowed"));
                }
                let distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut out = Vec::new();
                let mut star = false;
                for a in &l.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => out.push(x),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return err(format!("{name}: only plain arguments are allowed")),
                    }
                }
                Ok((out, distinct, star))
            }
        }
    }

    fn function(&mut self, f: &Function, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let name = match &f.name.0[..] {
            [sqlparser::ast::ObjectNamePart::Identifier(i)] => i.value.to_ascii_uppercase(),
            _ => {
                return err(format!(
                    "function {} is not supported; ADQL functions: {}",
                    f.name,
                    FUNCTIONS.join(", ")
                ));
            }
        };
        let (args, distinct, star) = self.args(f)?;
        let n = args.len();
        let arity = |lo: usize, hi: usize| -> Result<(), AdqlError> {
            if star || n < lo || n > hi {
                let want = if lo == hi {
                    format!("{lo}")
                } else {
                    format!("{lo} to {hi}")
                };
                err(format!("{name} takes {want} argument(s): \"{e}\""))
            } else {
                Ok(())
            }
        };
        if distinct && !matches!(name.as_str(), "COUNT" | "SUM" | "AVG" | "MIN" | "MAX") {
            return err(format!(
                "DISTINCT is allowed only in aggregates, not in {name}"
            ));
        }
        let pg = self.sql.pg();
        match name.as_str() {
            "COUNT" | "MIN" | "MAX" | "AVG" | "SUM" => {
                if !self.aggregates {
                    return err(format!(
                        "{name} is an aggregate: it may appear in SELECT, HAVING and ORDER BY, not in WHERE, ON or GROUP BY"
                    ));
                }
                let d = if distinct { "DISTINCT " } else { "" };
                if name == "COUNT" && star && n == 0 && !distinct {
                    return Ok(Typed::new("COUNT(*)".into(), Ty::Int).agg(true));
                }
                if star || n != 1 {
                    return err(format!("{name} takes one argument (COUNT also *): \"{e}\""));
                }
                // An aggregate inside an aggregate is refused by both
                // backends; refuse it here with a clearer message.
                self.aggregates = false;
                let x = self.value(args[0]);
                self.aggregates = true;
                let x = x?;
                let ty = match name.as_str() {
                    "COUNT" => Ty::Int,
                    "AVG" => Ty::Float,
                    _ if name == "SUM" && !x.ty.numeric() => {
                        return err(format!(
                            "SUM adds numbers, but \"{}\" is {}",
                            args[0],
                            x.ty.name()
                        ));
                    }
                    _ => x.ty,
                };
                let inner = if name == "AVG" && pg {
                    self.as_float(x).sql
                } else {
                    x.sql
                };
                Ok(Typed::new(format!("{name}({d}{inner})"), ty).agg(true))
            }
            "ABS" => {
                arity(1, 1)?;
                let x = self.numeric(args[0])?;
                Ok(Typed::new(format!("ABS({})", x.sql), x.ty).agg(x.aggregate))
            }
            "CEILING" | "CEIL" | "FLOOR" | "SQRT" | "EXP" | "LOG" | "LOG10" | "SIN" | "COS"
            | "TAN" | "ASIN" | "ACOS" | "ATAN" | "DEGREES" | "RADIANS" => {
                arity(1, 1)?;
                let x = self.float_arg(args[0])?;
                let sqlname = match name.as_str() {
                    "CEILING" | "CEIL" => "CEIL",
                    "LOG" => "LN",
                    "LOG10" if pg => "LOG",
                    other => other,
                };
                Ok(Typed::new(format!("{sqlname}({})", x.sql), Ty::Float).agg(x.aggregate))
            }
            "ATAN2" | "POWER" => {
                arity(2, 2)?;
                let (a, b) = (self.float_arg(args[0])?, self.float_arg(args[1])?);
                Ok(
                    Typed::new(format!("{name}({}, {})", a.sql, b.sql), Ty::Float)
                        .agg(a.aggregate || b.aggregate),
                )
            }
            "PI" => {
                arity(0, 0)?;
                Ok(Typed::new("PI()".into(), Ty::Float))
            }
            "MOD" => {
                arity(2, 2)?;
                let (a, b) = (self.numeric(args[0])?, self.numeric(args[1])?);
                let agg = a.aggregate || b.aggregate;
                if a.ty == Ty::Int && b.ty == Ty::Int {
                    return Ok(Typed::new(format!("({} % {})", a.sql, b.sql), Ty::Int).agg(agg));
                }
                let sql = if pg {
                    format!(
                        "CAST(MOD(CAST({} AS NUMERIC), CAST({} AS NUMERIC)) AS DOUBLE PRECISION)",
                        a.sql, b.sql
                    )
                } else {
                    format!("MOD({}, {})", a.sql, b.sql)
                };
                Ok(Typed::new(sql, Ty::Float).agg(agg))
            }
            "ROUND" | "TRUNCATE" => {
                arity(1, 2)?;
                let x = self.float_arg(args[0])?;
                let places = match args.get(1) {
                    Some(p) => {
                        let p = self.value(p)?;
                        if p.ty != Ty::Int {
                            return err(format!(
                                "{name}: the number of decimals must be an integer"
                            ));
                        }
                        Some(p)
                    }
                    None => None,
                };
                let agg = x.aggregate || places.as_ref().is_some_and(|p| p.aggregate);
                let sql = match (name.as_str(), places, pg) {
                    ("ROUND", None, _) => format!("ROUND({})", x.sql),
                    ("ROUND", Some(p), false) => format!("ROUND({}, {})", x.sql, p.sql),
                    ("ROUND", Some(p), true) => format!(
                        "CAST(ROUND(CAST({} AS NUMERIC), CAST({} AS INTEGER)) AS DOUBLE PRECISION)",
                        x.sql, p.sql
                    ),
                    (_, None, _) => format!("TRUNC({})", x.sql),
                    (_, Some(p), false) => format!(
                        "(TRUNC({x} * POWER(10.0, {p})) / POWER(10.0, {p}))",
                        x = x.sql,
                        p = p.sql
                    ),
                    (_, Some(p), true) => format!(
                        "CAST(TRUNC(CAST({} AS NUMERIC), CAST({} AS INTEGER)) AS DOUBLE PRECISION)",
                        x.sql, p.sql
                    ),
                };
                Ok(Typed::new(sql, Ty::Float).agg(agg))
            }
            "LOWER" | "UPPER" => {
                arity(1, 1)?;
                let x = self.value(args[0])?;
                if !matches!(x.ty, Ty::Text | Ty::Null) {
                    return err(format!(
                        "{name} takes text, but \"{}\" is {}",
                        args[0],
                        x.ty.name()
                    ));
                }
                Ok(Typed::new(format!("{name}({})", x.sql), Ty::Text).agg(x.aggregate))
            }
            "DISTANCE" | "COORD1" | "COORD2" => {
                super::geometry::value_function(self, &name, &args, e)
            }
            "POINT" | "CIRCLE" | "POLYGON" | "BOX" | "REGION" => err(format!(
                "{name}(…) is a geometry: use it inside CONTAINS, INTERSECTS, DISTANCE, COORD1 or COORD2"
            )),
            "CONTAINS" | "INTERSECTS" => err(format!(
                "{name} must be compared with 1 or 0, e.g. {name}(POINT(ra, dec), CIRCLE(10, 20, 0.1)) = 1"
            )),
            _ => err(format!(
                "function {name} is not supported; ADQL functions: {}",
                FUNCTIONS.join(", ")
            )),
        }
    }
}

/// Whether two values may be compared: numbers with numbers, text with
/// text (NULL with anything).
fn comparable(a: &Typed<'_>, b: &Typed<'_>, e: &Expr) -> Result<(), AdqlError> {
    let ok = a.ty == Ty::Null
        || b.ty == Ty::Null
        || (a.ty.numeric() && b.ty.numeric())
        || (a.ty == Ty::Text && b.ty == Ty::Text);
    if ok {
        Ok(())
    } else {
        err(format!(
            "\"{}\" compares {} with {}; compare numbers with numbers and text with text",
            crate::params::shown(&e.to_string()),
            a.ty.name(),
            b.ty.name()
        ))
    }
}

/// An SQL LIKE pattern (`%`, `_`) as a case-sensitive GLOB pattern.
pub(crate) fn like_to_glob(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 4);
    for c in p.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

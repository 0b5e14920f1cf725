//! Reads a UDF's signature from its crate's source, as Arroyo's host does (the compiled library exports no
//! types): the one function marked `#[udf]` in `src/lib.rs`, its parameters' names and Rust types, and its
//! return type. Pure: the rules that decide what is supported are unit-tested here.

use model::UdfType;
use syn::{FnArg, GenericArgument, Item, ItemFn, Pat, PathArguments, ReturnType, Type};

/// The Rust type of one value crossing the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RustType {
    /// `bool`.
    Bool,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `&str` as a parameter, `String` as a return type.
    Str,
}

impl RustType {
    /// How it is spelled in Rust (as a parameter).
    pub fn spelling(self) -> &'static str {
        match self {
            RustType::Bool => "bool",
            RustType::I32 => "i32",
            RustType::I64 => "i64",
            RustType::U32 => "u32",
            RustType::U64 => "u64",
            RustType::F32 => "f32",
            RustType::F64 => "f64",
            RustType::Str => "&str",
        }
    }

    /// The column type of a return value of this type.
    pub fn column_type(self) -> UdfType {
        match self {
            RustType::Bool => UdfType::Boolean,
            RustType::I32 => UdfType::Int32,
            RustType::I64 => UdfType::Int64,
            RustType::U32 => UdfType::UInt32,
            RustType::U64 => UdfType::UInt64,
            RustType::F32 => UdfType::Float32,
            RustType::F64 => UdfType::Float64,
            RustType::Str => UdfType::Utf8,
        }
    }
}

/// One parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name, which binds it to a column or an event field.
    pub name: String,
    /// Its element type.
    pub ty: RustType,
    /// `Option<T>` (or `Vec<Option<T>>`).
    pub nullable: bool,
    /// `Vec<T>`: the parameter takes every value of a window.
    pub list: bool,
}

/// A UDF's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The function's name: the column's name.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
    /// The return type.
    pub ret: RustType,
    /// The return type is `Option<T>`.
    pub ret_nullable: bool,
}

impl Signature {
    /// Whether this is an aggregate UDF (its parameters are `Vec`s).
    pub fn is_aggregate(&self) -> bool {
        self.params.iter().any(|p| p.list)
    }
}

/// Why a source holds no usable UDF.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The source does not parse as Rust.
    #[error("src/lib.rs does not parse: {0}")]
    Syntax(String),
    /// No `#[udf]` function.
    #[error("src/lib.rs has no function marked #[udf]; mark the function to call with #[udf]")]
    NoUdf,
    /// More than one.
    #[error("src/lib.rs marks {0} functions with #[udf]; a UDF crate holds exactly one")]
    SeveralUdfs(usize),
    /// An async UDF.
    #[error(
        "`{0}` is an async UDF; async UDFs are not supported by this job (remove `async`: UDFs here run inside the \
         window operator, one call per batch)"
    )]
    Async(String),
    /// No parameter (the plugin needs one to know the batch size).
    #[error("`{0}` takes no parameter; a UDF needs at least one (a column such as `count` or an event field)")]
    NoParams(String),
    /// A parameter that is not a plain name.
    #[error("parameter {index} of `{name}` is a pattern; give it a plain name (it binds the parameter)")]
    Pattern {
        /// The function.
        name: String,
        /// Position of the parameter.
        index: usize,
    },
    /// A type outside the supported set.
    #[error(
        "{what} of `{name}` has type `{found}`, which is not supported; use bool, i32, i64, u32, u64, f32, f64, \
         &str (String as the return type), Option<T> of those, or Vec<T> for an aggregate UDF"
    )]
    Type {
        /// The function.
        name: String,
        /// Which part (`parameter x`, `the return type`).
        what: String,
        /// The type as written.
        found: String,
    },
    /// A UDF that mixes `Vec` and plain parameters.
    #[error(
        "`{0}` mixes Vec<T> and plain parameters; an aggregate UDF takes only Vec<T> parameters (event fields), a \
         scalar one only plain parameters (window columns)"
    )]
    Mixed(String),
}

/// Reads the signature of the one `#[udf]` function in `source` (the text of `src/lib.rs`).
pub fn parse(source: &str) -> Result<Signature, SignatureError> {
    let file = syn::parse_file(source).map_err(|e| SignatureError::Syntax(e.to_string()))?;
    let udfs: Vec<&ItemFn> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Fn(f)
                if f.attrs
                    .iter()
                    .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "udf")) =>
            {
                Some(f)
            }
            _ => None,
        })
        .collect();
    let f = match udfs.as_slice() {
        [] => return Err(SignatureError::NoUdf),
        [f] => *f,
        many => return Err(SignatureError::SeveralUdfs(many.len())),
    };
    let name = f.sig.ident.to_string();
    if f.sig.asyncness.is_some() {
        return Err(SignatureError::Async(name));
    }
    let mut params = Vec::new();
    for (index, input) in f.sig.inputs.iter().enumerate() {
        let FnArg::Typed(t) = input else {
            return Err(SignatureError::Pattern { name, index });
        };
        let Pat::Ident(ident) = t.pat.as_ref() else {
            return Err(SignatureError::Pattern { name, index });
        };
        let param_name = ident.ident.to_string();
        let unsupported = || SignatureError::Type {
            name: name.clone(),
            what: format!("parameter `{param_name}`"),
            found: spell(&t.ty),
        };
        let (list, element) = match generic_of(&t.ty, "Vec") {
            Some(inner) => (true, inner),
            None => (false, t.ty.as_ref()),
        };
        let (nullable, ty) = nullable_type(element, false).ok_or_else(unsupported)?;
        params.push(Param {
            name: param_name,
            ty,
            nullable,
            list,
        });
    }
    if params.is_empty() {
        return Err(SignatureError::NoParams(name));
    }
    if params.iter().any(|p| p.list) && params.iter().any(|p| !p.list) {
        return Err(SignatureError::Mixed(name));
    }
    let (ret_nullable, ret) = match &f.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, t) => nullable_type(t, true),
    }
    .ok_or_else(|| SignatureError::Type {
        name: name.clone(),
        what: "the return type".to_string(),
        found: match &f.sig.output {
            ReturnType::Default => "()".to_string(),
            ReturnType::Type(_, t) => spell(t),
        },
    })?;
    Ok(Signature {
        name,
        params,
        ret,
        ret_nullable,
    })
}

/// `T` of `Wrapper<T>` when `ty` is one.
fn generic_of<'t>(ty: &'t Type, wrapper: &str) -> Option<&'t Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// `(nullable, type)` of `T` or `Option<T>`; `owned` for return types (`String`, not `&str`).
fn nullable_type(ty: &Type, owned: bool) -> Option<(bool, RustType)> {
    match generic_of(ty, "Option") {
        Some(inner) => Some((true, plain_type(inner, owned)?)),
        None => Some((false, plain_type(ty, owned)?)),
    }
}

fn plain_type(ty: &Type, owned: bool) -> Option<RustType> {
    match ty {
        Type::Reference(r) if !owned => match r.elem.as_ref() {
            Type::Path(p) if p.path.is_ident("str") => Some(RustType::Str),
            _ => None,
        },
        Type::Path(p) => {
            let ident = p.path.get_ident()?.to_string();
            Some(match ident.as_str() {
                "bool" => RustType::Bool,
                "i32" => RustType::I32,
                "i64" => RustType::I64,
                "u32" => RustType::U32,
                "u64" => RustType::U64,
                "f32" => RustType::F32,
                "f64" => RustType::F64,
                "String" if owned => RustType::Str,
                _ => return None,
            })
        }
        _ => None,
    }
}

/// A type as written, without the spaces the token printer puts in.
fn spell(ty: &Type) -> String {
    let text = quote::ToTokens::to_token_stream(ty).to_string();
    text.replace(' ', "").replace(',', ", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(source: &str) -> Result<Signature, SignatureError> {
        parse(source)
    }

    #[test]
    fn a_scalar_udf_reads_its_parameters_and_return_type() {
        let s = sig(
            "use arroyo_udf_plugin::udf;\n#[udf]\nfn heat_index(avg_temperature: f64, avg_humidity: \
                     Option<f64>, device_id: &str) -> Option<f64> { None }",
        )
        .unwrap();
        assert_eq!(s.name, "heat_index");
        assert!(!s.is_aggregate());
        assert_eq!(
            s.params,
            [
                Param {
                    name: "avg_temperature".into(),
                    ty: RustType::F64,
                    nullable: false,
                    list: false
                },
                Param {
                    name: "avg_humidity".into(),
                    ty: RustType::F64,
                    nullable: true,
                    list: false
                },
                Param {
                    name: "device_id".into(),
                    ty: RustType::Str,
                    nullable: false,
                    list: false
                },
            ]
        );
        assert_eq!((s.ret, s.ret_nullable), (RustType::F64, true));
    }

    #[test]
    fn an_aggregate_udf_takes_vecs() {
        let s =
            sig("#[arroyo_udf_plugin::udf] fn p90(temperature: Vec<f64>, ts: Vec<i64>) -> String { todo!() }").unwrap();
        assert!(s.is_aggregate());
        assert!(s.params.iter().all(|p| p.list));
        assert_eq!(s.params[1].ty, RustType::I64);
        assert_eq!(s.ret, RustType::Str);
    }

    #[test]
    fn functions_without_the_attribute_are_helpers() {
        let s = sig("fn helper(x: f64) -> f64 { x }\n#[udf] fn f(count: u64) -> u64 { helper(1.0) as u64 + count }")
            .unwrap();
        assert_eq!(s.name, "f");
    }

    #[test]
    fn no_udf_or_several_are_refused() {
        assert_eq!(sig("fn f(x: f64) -> f64 { x }"), Err(SignatureError::NoUdf));
        assert_eq!(
            sig("#[udf] fn f(x: f64) -> f64 { x }\n#[udf] fn g(x: f64) -> f64 { x }"),
            Err(SignatureError::SeveralUdfs(2))
        );
        assert!(matches!(sig("fn ("), Err(SignatureError::Syntax(_))));
    }

    #[test]
    fn an_async_udf_is_refused_with_the_fix() {
        let e = sig("#[udf] async fn lookup(device_id: &str) -> String { String::new() }").unwrap_err();
        assert_eq!(e, SignatureError::Async("lookup".into()));
        assert!(e.to_string().contains("remove `async`"));
    }

    #[test]
    fn unsupported_types_are_named() {
        let e = sig("#[udf] fn f(t: HashMap<String, i32>) -> f64 { 0.0 }").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parameter `t` of `f` has type `HashMap<String, i32>`, which"),
            "{e}"
        );
        let e = sig("#[udf] fn f(t: f64) -> &str { \"\" }").unwrap_err();
        assert!(
            e.to_string().starts_with("the return type of `f` has type `&str`"),
            "{e}"
        );
        let e = sig("#[udf] fn f(t: f64) { }").unwrap_err();
        assert!(e.to_string().starts_with("the return type of `f` has type `()`"), "{e}");
        assert!(
            sig("#[udf] fn f(t: String) -> f64 { 0.0 }").is_err(),
            "parameters borrow strings"
        );
        assert!(sig("#[udf] fn f(t: &f64) -> f64 { 0.0 }").is_err());
    }

    #[test]
    fn mixed_empty_and_pattern_parameters_are_refused() {
        assert_eq!(
            sig("#[udf] fn f(a: Vec<f64>, count: u64) -> f64 { 0.0 }"),
            Err(SignatureError::Mixed("f".into()))
        );
        assert_eq!(
            sig("#[udf] fn f() -> f64 { 0.0 }"),
            Err(SignatureError::NoParams("f".into()))
        );
        assert_eq!(
            sig("#[udf] fn f((a, b): (f64, f64)) -> f64 { a + b }"),
            Err(SignatureError::Pattern {
                name: "f".into(),
                index: 0
            })
        );
    }
}

//! User-defined functions in Arroyo's `#[udf]` format (see `docs/udf.md`).
//!
//! `dataflow --udf DIR` (repeatable) names a Cargo crate as an Arroyo user writes it. Before any input is read,
//! [`UdfSources::signatures`] reads each crate's signature ([`signature`]) — enough for the SQL planner to resolve
//! calls ([`Signatures::functions`]) and, for the built-in job, to bind the parameters by name ([`binding`]) —
//! then [`Signatures::build`] builds each crate or takes the cached build ([`compile`]) and loads the library once
//! per process ([`abi`]); every worker then shares the loaded set. Each worker calls them through its own
//! [`host::Host`], as the compiled query asks: scalar UDFs on a row's values, aggregate UDFs on a window's rows.

pub mod abi;
pub mod binding;
pub mod compile;
pub mod host;
pub mod signature;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use model::value::DataType;
use model::{UdfColumn, UdfKind};
use sql::{DefaultUdf, Function, FunctionKind};

use abi::Plugin;
use signature::{RustType, Signature};

/// Where the job's UDFs come from (`--udf`, `--udf-cache`): checked flags, nothing read or built yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdfSources {
    /// The crates' folders, in `--udf` order.
    pub dirs: Vec<PathBuf>,
    /// Where they are built and their libraries cached.
    pub cache: PathBuf,
}

impl UdfSources {
    /// Reads every crate's signature (nothing is built): fails on the first crate that cannot be used, with the
    /// reason and the fix, and on two crates of one name.
    pub fn signatures(&self) -> Result<Signatures> {
        let mut list: Vec<(Signature, PathBuf)> = Vec::new();
        for dir in &self.dirs {
            let sig = read_signature(dir)?;
            if list.iter().any(|(s, _)| s.name == sig.name) {
                bail!(
                    "two --udf crates define `{}`; a UDF's name is how SQL calls it, so each must be unique (rename \
                     one function)",
                    sig.name
                );
            }
            list.push((sig, dir.clone()));
        }
        Ok(Signatures {
            list,
            cache: self.cache.clone(),
        })
    }
}

/// The signatures of the job's UDFs, read but not built.
pub struct Signatures {
    list: Vec<(Signature, PathBuf)>,
    cache: PathBuf,
}

impl Signatures {
    /// The registry the SQL planner resolves calls in, in `--udf` order (a call's function index is its
    /// position here, and in [`Udfs`]).
    pub fn functions(&self) -> Vec<Function> {
        self.list.iter().map(|(sig, _)| function_of(sig)).collect()
    }

    /// The UDF columns of the built-in job: each function called with its parameters bound by name to the
    /// seed's window columns (scalar) or event fields (aggregate); fails naming the parameter and the valid names.
    pub fn builtin_columns(&self) -> Result<Vec<DefaultUdf>> {
        self.list
            .iter()
            .map(|(sig, dir)| {
                binding::bind(sig).with_context(|| format!("--udf {}", dir.display()))?;
                Ok(DefaultUdf {
                    name: sig.name.clone(),
                    kind: kind_of(sig),
                    params: sig.params.iter().map(|p| p.name.clone()).collect(),
                })
            })
            .collect()
    }

    /// Builds (or takes from the cache) and loads every crate.
    pub fn build(self) -> Result<Udfs> {
        let mut list = Vec::with_capacity(self.list.len());
        for (sig, dir) in self.list {
            let source_hash = compile::source_hash(&dir)?;
            let library = compile::library(&dir, &sig.name, &source_hash, &self.cache)?;
            let plugin = Plugin::load(&library)?;
            tracing::info!(udf = %sig.name, kind = ?kind_of(&sig), "UDF loaded");
            list.push(Udf {
                sig,
                source_hash,
                plugin,
            });
        }
        Ok(Udfs { list })
    }
}

/// One loaded UDF.
pub struct Udf {
    sig: Signature,
    source_hash: String,
    plugin: Plugin,
}

impl Udf {
    /// The function's name, which SQL calls it by (and the built-in job's column name).
    pub fn name(&self) -> &str {
        &self.sig.name
    }

    /// SHA-256 of the crate's source.
    pub fn source_hash(&self) -> &str {
        &self.source_hash
    }

    /// Its column in the built-in job's outputs (and `latest.json`'s `udfs`).
    pub fn column(&self) -> UdfColumn {
        UdfColumn {
            name: self.sig.name.clone(),
            kind: match kind_of(&self.sig) {
                FunctionKind::Scalar => UdfKind::Scalar,
                FunctionKind::Aggregate => UdfKind::Aggregate,
            },
            data_type: self.sig.ret.column_type(),
        }
    }
}

/// The job's UDFs, in `--udf` order; empty without the flag.
#[derive(Default)]
pub struct Udfs {
    list: Vec<Udf>,
}

impl std::fmt::Debug for Udfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.list.iter().map(|u| u.name())).finish()
    }
}

impl Udfs {
    /// No UDF.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every UDF, in `--udf` order.
    pub fn iter(&self) -> impl Iterator<Item = &Udf> {
        self.list.iter()
    }

    /// The UDF of function index `i` (the query's registry order).
    pub fn get(&self, i: usize) -> Option<&Udf> {
        self.list.get(i)
    }

    /// Their columns, in `--udf` order.
    pub fn columns(&self) -> Vec<UdfColumn> {
        self.list.iter().map(Udf::column).collect()
    }
}

/// A UDF's kind: aggregate when its parameters are `Vec`s.
fn kind_of(sig: &Signature) -> FunctionKind {
    if sig.is_aggregate() {
        FunctionKind::Aggregate
    } else {
        FunctionKind::Scalar
    }
}

/// The SQL type a Rust type stands for.
fn sql_type(t: RustType) -> DataType {
    match t {
        RustType::Bool => DataType::Boolean,
        RustType::I32 | RustType::I64 | RustType::U32 | RustType::U64 => DataType::BigInt,
        RustType::F32 | RustType::F64 => DataType::Double,
        RustType::Str => DataType::Text,
    }
}

/// A signature as the planner sees it. Every result can be NULL: a call that fails gives NULL.
fn function_of(sig: &Signature) -> Function {
    Function {
        name: sig.name.clone(),
        kind: kind_of(sig),
        args: sig.params.iter().map(|p| sql_type(p.ty)).collect(),
        returns: sql_type(sig.ret),
        nullable: true,
    }
}

/// The signature of the crate in `dir`, read from its `src/lib.rs`.
fn read_signature(dir: &Path) -> Result<Signature> {
    if !dir.is_dir() {
        bail!(
            "--udf {} is not a folder; pass the folder of a UDF crate (see udfs/)",
            dir.display()
        );
    }
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "--udf {}: no Cargo.toml there; pass the folder of a UDF crate (see udfs/ for examples)",
            dir.display()
        );
    }
    let lib = dir.join("src").join("lib.rs");
    let source = std::fs::read_to_string(&lib).with_context(|| {
        format!(
            "--udf {}: cannot read {}; a UDF crate has its #[udf] function in src/lib.rs",
            dir.display(),
            lib.display()
        )
    })?;
    signature::parse(&source).with_context(|| format!("--udf {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_stand_for_sql_types_and_results_may_be_null() {
        let sig = signature::parse(
            "use arroyo_udf_plugin::udf;\n#[udf]\nfn f(a: i32, b: u64, c: f32, d: &str, e: bool) -> Option<f64> { None }",
        )
        .unwrap();
        let f = function_of(&sig);
        assert_eq!(
            f.args,
            [
                DataType::BigInt,
                DataType::BigInt,
                DataType::Double,
                DataType::Text,
                DataType::Boolean
            ]
        );
        assert_eq!(
            (f.returns, f.nullable, f.kind),
            (DataType::Double, true, FunctionKind::Scalar)
        );
    }
}

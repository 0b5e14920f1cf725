//! User-defined functions in Arroyo's `#[udf]` format (see `docs/ARCHITECTURE.md`, "User-defined functions").
//!
//! `dataflow --udf DIR` (repeatable) names a Cargo crate as an Arroyo user writes it. Before any input is read,
//! [`Udfs::load`] reads each crate's signature ([`signature`]), binds its parameters by name ([`binding`]),
//! builds it or takes the cached build ([`compile`]) and loads the library once per process ([`abi`]); every
//! worker then shares the loaded set. Each worker evaluates them with its own [`eval::Evaluator`]: scalar UDFs on
//! each batch of windows the window operator emits, aggregate UDFs on each emitted window's inputs, one plugin
//! call per batch.

pub mod abi;
pub mod binding;
pub mod compile;
pub mod eval;
pub mod signature;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use model::{UdfColumn, UdfKind};

use crate::messages::InputFields;
use abi::Plugin;
use binding::{Binding, EventField};
use signature::Signature;

/// One loaded UDF.
pub struct Udf {
    sig: Signature,
    binding: Binding,
    source_hash: String,
    plugin: Plugin,
}

impl Udf {
    /// The function's name, which is its column's name.
    pub fn name(&self) -> &str {
        &self.sig.name
    }

    /// SHA-256 of the crate's source.
    pub fn source_hash(&self) -> &str {
        &self.source_hash
    }

    /// Its column in the outputs.
    pub fn column(&self) -> UdfColumn {
        UdfColumn {
            name: self.sig.name.clone(),
            kind: binding_kind(&self.binding),
            data_type: self.sig.ret.column_type(),
        }
    }
}

/// Where the job's UDFs come from (`--udf`, `--udf-cache`): checked flags, nothing built yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdfSources {
    /// The crates' folders, in `--udf` order.
    pub dirs: Vec<PathBuf>,
    /// Where they are built and their libraries cached.
    pub cache: PathBuf,
}

impl UdfSources {
    /// Builds (or takes from the cache) and loads every crate: see [`Udfs::load`].
    pub fn load(&self) -> Result<Udfs> {
        for dir in &self.dirs {
            if !dir.is_dir() {
                bail!(
                    "--udf {} is not a folder; pass the folder of a UDF crate (see udfs/)",
                    dir.display()
                );
            }
        }
        Udfs::load(&self.dirs, &self.cache)
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
    /// Reads, binds, builds (or takes from `cache`) and loads the crate of every directory in `dirs`. Fails on
    /// the first that cannot be used, with the reason and the fix.
    pub fn load(dirs: &[PathBuf], cache: &Path) -> Result<Udfs> {
        let mut list: Vec<Udf> = Vec::new();
        // Signatures and bindings first: a mistake in the last crate shows before minutes of building the first.
        let mut checked: Vec<(Signature, Binding, PathBuf)> = Vec::new();
        for dir in dirs {
            let (sig, binding) = check(dir)?;
            if checked.iter().any(|(s, _, _)| s.name == sig.name) {
                bail!(
                    "two --udf crates define `{}`; a UDF's name is its column's, so each must be unique (rename one \
                     function)",
                    sig.name
                );
            }
            checked.push((sig, binding, dir.clone()));
        }
        for (sig, binding, dir) in checked {
            let source_hash = compile::source_hash(&dir)?;
            let library = compile::library(&dir, &sig.name, &source_hash, cache)?;
            let plugin = Plugin::load(&library)?;
            tracing::info!(udf = %sig.name, kind = ?binding_kind(&binding), "UDF loaded");
            list.push(Udf {
                sig,
                binding,
                source_hash,
                plugin,
            });
        }
        Ok(Udfs { list })
    }

    /// No UDF.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every UDF, in `--udf` order.
    pub fn iter(&self) -> impl Iterator<Item = &Udf> {
        self.list.iter()
    }

    /// Their columns, in `--udf` order.
    pub fn columns(&self) -> Vec<UdfColumn> {
        self.list.iter().map(Udf::column).collect()
    }

    /// The event fields the aggregate UDFs take; `None` when there is no aggregate UDF (then windows keep no
    /// inputs at all).
    pub fn input_fields(&self) -> Option<InputFields> {
        let mut fields = InputFields::default();
        let mut any = false;
        for u in &self.list {
            if let Binding::Aggregate(params) = &u.binding {
                any = true;
                for (field, _) in params {
                    match field {
                        EventField::Temperature => fields.temperature = true,
                        EventField::Humidity => fields.humidity = true,
                        EventField::Battery => fields.battery = true,
                        EventField::Ts => {}
                    }
                }
            }
        }
        any.then_some(fields)
    }
}

fn binding_kind(b: &Binding) -> UdfKind {
    match b {
        Binding::Scalar(_) => UdfKind::Scalar,
        Binding::Aggregate(_) => UdfKind::Aggregate,
    }
}

/// The signature and binding of the crate in `dir`, read from its `src/lib.rs`.
fn check(dir: &Path) -> Result<(Signature, Binding)> {
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
    let sig = signature::parse(&source).with_context(|| format!("--udf {}", dir.display()))?;
    let binding = binding::bind(&sig).with_context(|| format!("--udf {}", dir.display()))?;
    Ok((sig, binding))
}

//! The one home of the plugin ABI of `arroyo-udf-plugin` 0.2: the `#[repr(C)]` types its `#[udf]` wrapper
//! exports (`__run(FfiArrays) -> RunResult`), declared here over arrow 60's Arrow C data interface structs, which
//! are identical to those of the plugin's arrow 51. Everything `unsafe` about calling a plugin is in this file.
//!
//! Ownership across the boundary:
//! - the argument vector is allocated here with the system allocator and freed by the plugin (with its own
//!   global allocator, the system one for every crate that does not set another), so the host may use any
//!   global allocator;
//! - the argument arrays are released by the plugin through their release callbacks, which point back into
//!   this process's arrow;
//! - the result array's buffers belong to the plugin and are released through its code, so a loaded library
//!   is never unloaded ([`Plugin`] is `'static`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;

use anyhow::{Context, Result, bail};
use arrow::array::ArrayData;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};

/// One array and its schema, as the plugin exchanges them.
#[repr(C)]
struct FfiArraySchema(FFI_ArrowArray, FFI_ArrowSchema);

/// The argument vector: a leaked `Vec<FfiArraySchema>` that the plugin takes back with `Vec::from_raw_parts`.
#[repr(C)]
struct FfiArrays {
    ptr: *mut FfiArraySchema,
    len: usize,
    capacity: usize,
    error: bool,
}

/// What `__run` returns: the result array, or `Err` when the function panicked.
#[repr(C)]
#[allow(dead_code, reason = "constructed by the plugin")]
enum RunResult {
    Ok(FfiArraySchema),
    Err,
}

type RunFn = unsafe extern "C-unwind" fn(FfiArrays) -> RunResult;

/// A loaded UDF library: its `__run` entry point. Loaded once per process, shared by every worker, never
/// unloaded.
#[derive(Clone, Copy)]
pub struct Plugin {
    run: RunFn,
}

/// The plugin reported a failure for the batch (its function panicked on some row), or answered with an array
/// that cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// `RunResult::Err`.
    #[error("the function panicked")]
    Panicked,
    /// The answer could not be imported.
    #[error("its answer is not a valid Arrow array: {0}")]
    BadAnswer(String),
}

impl Plugin {
    /// Loads the library at `path` and finds its `__run`.
    pub fn load(path: &Path) -> Result<Plugin> {
        // SAFETY: loading runs the library's initialisers; a UDF crate built by `cargo build` from the user's
        // source is trusted code, as in Arroyo.
        let library = unsafe { libloading::Library::new(path) }
            .with_context(|| format!("cannot load the UDF library {}", path.display()))?;
        // Arrays the plugin answered may outlive any handle: the library stays loaded for the process's life.
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: `__run` is the symbol `#[udf]` exports with exactly this signature.
        let run = match unsafe { library.get::<RunFn>(b"__run\0") } {
            Ok(symbol) => *symbol,
            Err(_) => bail!(
                "{} exports no `__run`: mark the function with `#[udf]` from arroyo-udf-plugin 0.2 and build the \
                 crate as `crate-type = [\"cdylib\"]`",
                path.display()
            ),
        };
        Ok(Plugin { run })
    }

    /// Calls the function once on `args` (arrays of equal length for a scalar UDF, one array per parameter of
    /// a group's values for an aggregate one) and returns its answer.
    pub fn call(&self, args: &[ArrayData]) -> Result<ArrayData, CallError> {
        let exported: Vec<FfiArraySchema> = args
            .iter()
            .map(|a| {
                let (array, schema) = to_ffi(a).map_err(|e| CallError::BadAnswer(e.to_string()))?;
                Ok(FfiArraySchema(array, schema))
            })
            .collect::<Result<_, CallError>>()?;
        let arrays = leak_for_plugin(exported);
        // SAFETY: `arrays` is laid out as the plugin's `FfiArrays` and allocated as it frees it; the plugin takes
        // ownership of the vector and of every array in it.
        let answer = unsafe { (self.run)(arrays) };
        match answer {
            RunResult::Ok(FfiArraySchema(array, schema)) => {
                // SAFETY: the plugin exported a valid array with its schema; `from_ffi` takes the array.
                unsafe { from_ffi(array, &schema) }.map_err(|e| CallError::BadAnswer(e.to_string()))
            }
            RunResult::Err => Err(CallError::Panicked),
        }
    }
}

/// The argument vector, allocated with the system allocator so that the plugin's `Vec::from_raw_parts` frees it
/// with the allocator that made it.
fn leak_for_plugin(items: Vec<FfiArraySchema>) -> FfiArrays {
    let len = items.len();
    let layout = Layout::array::<FfiArraySchema>(len.max(1)).expect("a handful of arrays");
    // SAFETY: the layout has a non-zero size; every slot is written before the plugin reads it.
    let ptr = unsafe { System.alloc(layout) }.cast::<FfiArraySchema>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    for (i, item) in items.into_iter().enumerate() {
        // SAFETY: `i < len`, inside the allocation.
        unsafe { ptr.add(i).write(item) };
    }
    FfiArrays {
        ptr,
        len,
        capacity: len.max(1),
        error: false,
    }
}

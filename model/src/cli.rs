//! How the binaries' flags are written back as command lines (each binary's `Args::to_args`), so that the
//! launcher and the tests start them from the binaries' own parsers and defaults.

use std::ffi::{OsStr, OsString};

/// `--name=value`: one argument, so a value that starts with `-` is never taken for a flag.
pub fn flag(name: &str, value: impl AsRef<OsStr>) -> OsString {
    let mut arg = OsString::from(name);
    arg.push("=");
    arg.push(value);
    arg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_and_its_value_are_one_argument() {
        assert_eq!(flag("--out", "-odd"), OsString::from("--out=-odd"));
    }
}

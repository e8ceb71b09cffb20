//! One module per subcommand.

pub mod convert;
pub mod explain;
pub mod rules;
pub mod scan;

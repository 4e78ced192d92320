//! The operator commands of the binary besides `serve`: [`check`] (is the configuration able
//! to reach the receiver?) and `invoke` (one invocation from the command line, through
//! [`crate::fc::invoke_once`]).

pub mod check;
pub mod x509;

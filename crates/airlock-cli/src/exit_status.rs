//! The command's exit status (ruff's `ExitStatus` shape). A scan's status is never computed
//! here: it is [`airlock::outcome`]'s, the one rule every surface (text, JSON, SARIF) uses.

use airlock::Outcome;

/// What the process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Nothing at or above `--fail-on`, nothing dangerous, and every file was read completely.
    Success = 0,
    /// A dangerous file, or a finding at or above `--fail-on`.
    Failure = 1,
    /// A usage error, or files that could not be scanned completely and nothing worse.
    Error = 2,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<Outcome> for ExitStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Pass => ExitStatus::Success,
            Outcome::Fail => ExitStatus::Failure,
            Outcome::Unscannable => ExitStatus::Error,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_outcomes_exit_codes() {
        for outcome in [Outcome::Pass, Outcome::Fail, Outcome::Unscannable] {
            assert_eq!(
                ExitStatus::from(outcome).code(),
                i32::from(outcome.exit_code())
            );
        }
    }
}

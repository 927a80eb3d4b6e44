//! The one error type of the engine, with Prometheus' API error categories.

/// Why a query failed. `error_type` gives the `errorType` string Prometheus'
/// HTTP API uses for the same failure, `http_status` its status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or is not valid PromQL.
    #[error("{0}")]
    Parse(String),
    /// A query parameter (range, step) is unusable.
    #[error("{0}")]
    InvalidParam(String),
    /// The query parsed but failed while evaluating.
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in expression evaluation")]
    Timeout,
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
}

impl QueryError {
    /// Prometheus' `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Parse(_) | Self::InvalidParam(_) => "bad_data",
            Self::Execution(_) | Self::TooManySamples => "execution",
            Self::Timeout => "timeout",
        }
    }

    /// The HTTP status Prometheus answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Parse(_) | Self::InvalidParam(_) => 400,
            Self::Execution(_) | Self::TooManySamples => 422,
            Self::Timeout => 503,
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        Self::Execution(msg.into())
    }
}

pub(crate) type Result<T> = std::result::Result<T, QueryError>;
